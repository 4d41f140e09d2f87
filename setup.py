"""Ship the dbt project inside the wheel.

``dbt_project/`` sits at the top of the repository, beside the Python packages, as dbt
projects do; a wheel carries only packages, so the build copies it to
``storepulse/dbt_project`` (``storepulse.dbt_runtime`` looks there when no checkout is beside
the code). Everything else is configured in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

GENERATED = ("target", "logs", "dbt_packages", ".user.yml", "__pycache__")


class BuildPyWithDbtProject(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads dbt_project/ in the checkout
            return
        source = Path(__file__).resolve().parent / "dbt_project"
        target = Path(self.build_lib) / "storepulse" / "dbt_project"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*GENERATED))


setup(cmdclass={"build_py": BuildPyWithDbtProject})
