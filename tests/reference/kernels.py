"""Regenerates every kernel fixture (vocabulary statistics, KL, logits gradient, PPO math, AdamW).

    /usr/bin/python3 tests/reference/kernels.py

The formulas are TRL's (ppo_trainer.py / core.py); each part lives in its own script.
"""
import os
import runpy

HERE = os.path.dirname(os.path.abspath(__file__))

for script in ("kernels_vocabulary.py", "kernels_ppo.py"):
    runpy.run_path(os.path.join(HERE, script), run_name="__main__")
