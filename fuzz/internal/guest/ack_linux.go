package guest

func (g *guest) acks() error { return nil }
