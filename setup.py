"""Build hook for the one C module Keel has (engine/_dictscan.c); everything
else about the package is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("engine._dictscan", ["engine/_dictscan.c"], extra_compile_args=["-O2"])])
