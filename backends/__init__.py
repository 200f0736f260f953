"""Framework adapters, one sub-package per framework. Import one per process, never from harness/."""
