"""Independent jobs through an established scheduler: submitit (SLURM job arrays on a cluster,
its local executor on one machine), or in this process.

One code path for every place a step runs: the step builds a picklable job (a callable) and a
list of work items (shard numbers), and `run_jobs` hands them to the executor its profile names.
A job must be idempotent and skip finished work on its own (the shard jobs check their done
markers), so that rerunning a step after a failure reruns only the shards that did not finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xqg.study.config import Executor


@dataclass(frozen=True)
class JobSettings:
    """Where and with what resources a step's jobs run.

    `inline` runs them one after the other in this process (no scheduler; the `mini` default);
    `local` runs them as concurrent processes on this machine through submitit's local executor;
    `slurm` submits a SLURM job array (at most `parallelism` at once)."""

    executor: Executor = "inline"
    folder: Path = Path("jobs")  # submitit's logs and pickles
    timeout_min: int = 60 * 24
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: int = 16
    parallelism: int = 64
    slurm_partition: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # any other submitit parameter

    def parameters(self) -> dict[str, Any]:
        """submitit's `update_parameters` arguments (the ``slurm_`` ones are ignored locally)."""
        params: dict[str, Any] = {
            "timeout_min": self.timeout_min,
            "gpus_per_node": self.gpus_per_node,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
            "slurm_array_parallelism": self.parallelism,
            **self.extra,
        }
        if self.slurm_partition:
            params["slurm_partition"] = self.slurm_partition
        return params


class JobFailed(RuntimeError):
    """A job of a step failed; the message names the item and the job's log."""


def run_jobs(job: Callable[[Any], Any], items: Sequence[Any], settings: JobSettings) -> list[Any]:
    """`job(item)` for every item through the executor of `settings`; the results in item order.

    Waits for every job; when some fail, raises `JobFailed` naming each failed item and its
    stderr log, after the others finished (their work is kept: a rerun redoes only the failed)."""
    if settings.executor == "inline":
        return [job(item) for item in items]
    import submitit

    executor = submitit.AutoExecutor(folder=settings.folder, cluster=settings.executor)
    executor.update_parameters(**settings.parameters())
    jobs = executor.map_array(job, list(items))
    results, failures = [], []
    for item, j in zip(items, jobs):
        try:
            results.append(j.result())
        except Exception as e:  # noqa: BLE001 - reported with the job's log below
            failures.append(f"item {item!r} (job {j.job_id}, log {j.paths.stderr}): {e}")
    if failures:
        raise JobFailed(f"{len(failures)} of {len(jobs)} jobs failed:\n  " + "\n  ".join(failures))
    return results
