"""Many agents sharing one stream list: which streams this replica watches."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ClusterConfig(BaseModel):
    """N replicas (a Kubernetes StatefulSet) read the same `streams`; each watches the share
    that rendezvous hashing of the stream ids gives its ordinal, so every stream has exactly
    one watcher and a resize moves few streams."""

    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(1, ge=1, le=10_000, description="How many agents share the streams.")
    ordinal: int = Field(
        0, ge=0, description="This agent's index, 0..replicas-1 (a StatefulSet pod's index: "
        "env VERITY_CLUSTER__ORDINAL from the label apps.kubernetes.io/pod-index)."
    )

    @model_validator(mode="after")
    def _ordinal_in_range(self) -> ClusterConfig:
        if self.ordinal >= self.replicas:
            raise ValueError(f"ordinal {self.ordinal} is not below replicas {self.replicas}")
        return self
