"""Portal-to-app side of the sandbox: installs, events, offline queue, placements, robots, app methods.

Modules: `model` (state), `auth` (auth blocks and frame fields), `delivery` (queue worker and form
encoding), `install` (register/install/finish/update/uninstall/open frames), `events`, `offline`,
`placements`, `robots`, `app_methods` (the REST methods, registered on import).
"""
from . import app_methods, events, offline, placements, robots  # noqa: F401  (register REST methods)
from .delivery import Delivery, Deliverer, deliverer, php_form
from .install import (LifecycleError, attach, callbacks, finish_install, install, installation, open_frame,
                      register_app, uninstall, update)
from .model import Installation
from .robots import add_rule, delete_rule

__all__ = ["Delivery", "Deliverer", "Installation", "LifecycleError", "add_rule", "attach", "callbacks",
           "delete_rule", "deliverer", "finish_install", "install", "installation", "open_frame", "php_form",
           "register_app", "uninstall", "update"]
