package serve

// ConfigWithDefaults exposes Config.withDefaults to the external tests.
func ConfigWithDefaults(c Config) Config { return c.withDefaults() }

// Queued exposes the number of images waiting in c's batcher to the
// external tests.
func (c *Classifier) Queued() int { return c.b.queued() }
