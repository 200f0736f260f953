"""Every table xfbench shows: the terminal (rich) renderers of runs, comparisons, history and the catalogue."""

from __future__ import annotations

from typing import Any

from harness.backend import BACKENDS
from harness.compare import to_markdown as comparison_markdown  # noqa: F401  (until the reporting merge)
from harness.config import OPTIMIZERS
from harness.data.registry import DATASETS
from harness.models import MODELS
from harness.strategies import describe_strategies
from harness.suites import SUITES
from harness.weights import INITIALIZERS


def print_catalogue() -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="xfbench catalogue", show_lines=False)
    table.add_column("kind")
    table.add_column("name")
    table.add_column("description")
    for name, s in SUITES.items():
        table.add_row("suite", name, f"{s.description} [{len(s.cases)} cases × {s.seeds} seeds]")
    for name, desc in describe_strategies().items():
        table.add_row("strategy", name, desc)
    for name, entry in MODELS.items():
        table.add_row("model", name, entry.description)
    for name, (_, desc) in DATASETS.items():
        table.add_row("dataset", name, desc)
    for name in BACKENDS:
        table.add_row("backend", name, "adapter in backends/" + name)
    for name in OPTIMIZERS:
        table.add_row("optimizer", name, "")
    for name, init in INITIALIZERS.items():
        table.add_row("initializer", name, init.description)
    console.print(table)


class RichProgress:
    """Live display: trials done / total, elapsed time, the latest epoch seen."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=self.console,
            transient=False,
        )
        self._task = None

    def start(self, total_trials: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("starting Ray…", total=total_trials)

    def extend(self, more_trials: int) -> None:
        self._progress.update(self._task, total=(self._progress.tasks[0].total or 0) + more_trials)

    def row(self, row: dict[str, Any]) -> None:
        if row["status"] == "failed":
            self.console.print(f"[red]trial {row['trial_id']} failed:[/red] {row['error']}")
            return
        if row.get("val_acc") is None or row.get("epoch_time_s") is None:
            return
        desc = f"{row['trial_id']} epoch {row['epoch']}: val_acc {row['val_acc']:.3f}, {row['epoch_time_s']:.2f}s"
        self._progress.update(self._task, description=desc)

    def trial_done(self, trial_id: str) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


def print_run_summary(outcome: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from harness.summary import COMPARISON_HEADER, PER_BACKEND_HEADER, comparison_cells, per_backend_cells

    console = Console()
    table = Table(title=f"xfbench — run {outcome.run_id}")
    for h in PER_BACKEND_HEADER:
        table.add_column(h)
    for _, r in outcome.summary.per_backend.iterrows():
        table.add_row(*per_backend_cells(r))
    console.print(table)
    if not outcome.summary.comparison.empty:
        cmp_table = Table(title="torch vs tensorflow")
        for h in COMPARISON_HEADER:
            cmp_table.add_column(h)
        for _, r in outcome.summary.comparison.iterrows():
            cmp_table.add_row(*comparison_cells(r))
        console.print(cmp_table)
    console.print(
        f"results: {outcome.run_dir}  (results.parquet, results.csv, run.json, summary.md); "
        f"wall time {outcome.wall_time_s:.1f}s"
    )


def print_comparison(base: Any, new: Any, rows: list[Any], warnings: list[str]) -> None:
    """``xfbench compare``: warnings about the environments, the table, each regression, and the count."""
    from rich.console import Console
    from rich.table import Table

    from harness.compare import HEADER, cells

    console = Console()
    for warning in warnings:
        console.print(f"[bold red]WARNING:[/bold red] {warning}", soft_wrap=True)
    table = Table(title=f"{base.label} → {new.label}")
    for h in HEADER:
        table.add_column(h)
    for row in rows:
        style = "red" if row.regressed else ("green" if "improvement" in (row.time_verdict, row.acc_verdict) else None)
        table.add_row(*cells(row), style=style)
    console.print(table)
    regressions = [r for r in rows if r.regressed]
    for r in regressions:
        console.print(
            f"[red]regression:[/red] {r.case} \\[{r.backend}] time {r.time_verdict} (x{r.time_ratio:.3f}, "
            f"p={r.time_p:.2g}), accuracy {r.acc_verdict} ({r.acc_diff_pp:+.2f} pp)",
            soft_wrap=True,
        )
    console.print(f"{len(regressions)} regression(s) in {len(rows)} case(s)", soft_wrap=True)


def print_history(runs: list[dict[str, Any]], table: Any, metric: str, results_dir: str) -> None:
    """``xfbench history``: the runs, then the metric's trend per case and backend."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    listing = Table(title=f"runs in {results_dir}")
    for h in ("run_id", "started", "git_commit", "status", "trials"):
        listing.add_column(h)
    for run in runs:
        listing.add_row(run["run_id"], run["started"], run["git_commit"], run["status"], str(run["trials"]))
    console.print(listing)
    if not table.empty:
        trend = Table(title=f"{metric} per case (oldest → newest)")
        trend.add_column("case")
        trend.add_column("backend")
        for column in table.columns:
            trend.add_column(str(column))
        for (case, backend), values in table.iterrows():
            trend.add_row(case, backend, *["" if v != v else f"{v:.4g}" for v in values])
        console.print(trend)
