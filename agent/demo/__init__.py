"""The embedded demo: a synthetic clip, an embedded Redis, the agent, the alerts read back."""
