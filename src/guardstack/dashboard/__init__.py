"""The review dashboard: where trust and safety reviewers decide layer 3's cases.

Server-rendered (Starlette + Jinja2, autoescaped), served under ``/ui`` by
``guardstack serve`` and on its own by ``guardstack dashboard``; the app is
:func:`guardstack.dashboard.app.create_dashboard`. Everything shown from the
store was written by whoever used the model and is treated as untrusted text.
See docs/dashboard.md.
"""
