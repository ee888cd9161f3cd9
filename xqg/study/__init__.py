"""The study on top of the library: a `Workspace` per profile, typed step configurations, the
compared systems, and one module per step in `xqg.study.steps` (see the README's Architecture)."""
