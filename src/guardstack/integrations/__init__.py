"""guardstack inside other people's LLM stacks: adapters that plug its checks
into a framework's own extension points (``litellm_guardrail``: LiteLLM's
proxy and SDK)."""
