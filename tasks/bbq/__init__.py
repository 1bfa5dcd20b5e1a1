"""BBQ (Parrish et al. 2022): data and bias target (data.py), bias scores (metrics.py), the task (task.py)."""
