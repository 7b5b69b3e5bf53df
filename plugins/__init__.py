"""First-party plugins. Each is an ordinary plugin, published through the ``aimg`` entry-point
group in setup.cfg exactly as a third-party package would publish its own."""
