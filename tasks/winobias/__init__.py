"""WinoBias (Zhao et al. 2018): pro/anti minimal pairs (data.py) and the likelihood task (task.py)."""
