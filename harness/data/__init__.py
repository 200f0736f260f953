"""Framework-neutral datasets: files, formats, splits and batch order."""

from harness.data.batching import epoch_batches
from harness.data.formats import ChecksumError, DataFileError
from harness.data.registry import DATASETS, Dataset, load_dataset

__all__ = ["DATASETS", "ChecksumError", "DataFileError", "Dataset", "epoch_batches", "load_dataset"]
