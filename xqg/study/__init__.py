"""The study's steps as functions the notebooks call: each reads and writes files under
``work/<profile>/`` and ``results/<profile>/``, so a step can be rerun alone."""
