package serve

// ConfigWithDefaults exposes Config.withDefaults to the external tests.
func ConfigWithDefaults(c Config) Config { return c.withDefaults() }
