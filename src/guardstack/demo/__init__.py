"""``guardstack demo``: the whole stack on one machine, on embedded defaults.

SmolLM2-135M-Instruct under llama.cpp's server is the upstream, ``guardstack
serve`` sits in front of it with a SQLite store, ``guardstack simulate`` sends
persona traffic through it, ``guardstack analyze`` runs layer 3, and a short
report says what each layer caught (docs/demo.md)."""
