package proxy

// AutoDriver is the driver name that lets ChooseDriver pick the driver
// (the daemon's --driver auto).
const AutoDriver = "auto"

// Choice is the driver ChooseDriver picked and why, for the log.
type Choice struct {
	// Name is the driver's name in the table Drivers returns.
	Name string
	// Reason says why, in a sentence.
	Reason string
}
