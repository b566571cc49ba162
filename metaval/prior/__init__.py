"""A prior of generated tabular tasks and its labels (for a zero-shot value model).

* ``generator``: ``sample_task(seed)`` / ``TaskSpec`` / ``build_task(spec)``.
* ``pairs``: a task's (B, S) pairs, every kind dealt, redrawable from seeds.
* ``labels``: labels of one task / one shard with the pair engine, on shape buckets.
* ``storage``: ``load_prior(workdir)`` -> ``PriorLabels`` (table, arrays per pair).
* ``job``: ``metaval prior`` (resumable shards, parallel workers, progress bar).

Only the generator's names are imported here: the generic supplement kinds
(``metaval.data.generic``) use it, and it depends on nothing but ``metaval.data.tasks``.
"""

from metaval.prior.generator import TaskSpec, build_task, sample_spec, sample_task

__all__ = ["TaskSpec", "build_task", "sample_spec", "sample_task"]
