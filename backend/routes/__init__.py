"""HTTP routes: thin adapters from requests to the service, store and executor."""
