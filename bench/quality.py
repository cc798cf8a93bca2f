"""Quality of mmsk's defaults against strong classical baselines on real tasks (issue 13).

Tasks (``bench/_quality_tasks.py``; ``from _quality_tasks import load_task,
task_names``, with ``bench/`` on ``sys.path``)::

    task = load_task("icons", seed=0, quick=False)
    task.X_train, task.X_test   # DataFrames of raw columns (uint8 images, str, numbers, category)
    task.y_train, task.y_test   # NumPy targets
    task.kind                   # "classification" or "regression"
    task.modalities             # {column: "image" | "text" | "audio" | "numeric" | "categorical"}
    task.description, task.source, task.licence

Tasks: av_digits, icons (shipped with mmsk), glyphs, debian_section,
debian_size (built by ``bench/data/build_*.py``).

The benchmark script itself is being written; see bench/README.md.
"""
