"""The sample package's app."""

from offload import App

app = App("memory://")
