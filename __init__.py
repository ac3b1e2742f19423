"""FIELDS Blender extension entry point: it only delegates to `fields_addon`."""

from . import fields_addon


def register() -> None:
    fields_addon.register()


def unregister() -> None:
    fields_addon.unregister()
