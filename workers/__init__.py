"""RQ job functions and the worker entry point. Workers import services, models and the
plugin API; never the HTTP layer."""
