// Command complinist-agent is the host program installed at /usr/local/sbin/<service>.
package main

import (
	"os"

	"complinist/agent/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args)) }
