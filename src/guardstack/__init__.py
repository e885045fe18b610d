"""guardstack: the three layers of safety for open-weight LLM deployments."""

from guardstack.verdict import Action, Status, Verdict

__version__ = "0.1.0"

__all__ = ["Action", "Guard", "Status", "Verdict", "__version__"]


def __getattr__(name: str) -> object:
    # Guard pulls in the classifier runtime; import it only when asked for.
    if name == "Guard":
        from guardstack.guard import Guard

        return Guard
    raise AttributeError(name)
