"""Run execution, by concern: the plan of the remaining steps (``plan``), the arms and where
their pages come from (``arms``), preparing a run (``prepare``), the checkpoint store
(``checkpoints``) and the executor loop over the plan (``executor``)."""

from prefshift_orchestrator.execution.executor import RunExecutor

__all__ = ["RunExecutor"]
