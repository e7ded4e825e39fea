"""Image providers: plugins behind one interface (base.Provider), built by name
(registry), tried in order for each item with fallback (chain)."""
