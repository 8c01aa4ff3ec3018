package master_test

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/regent-ha/regent/master"
)

// Example shows how the appliance runs a master over its replicated log and
// turns the result into an exit code.
func Example() {
	var lg master.Log // the appliance's adapter over *replog.Node
	if lg == nil {
		return // nothing to run in this example
	}
	cfg := master.Config{
		ID:                   "3f1c...",
		Cluster:              "prod",
		IP:                   "0.0.0.0",
		Port:                 5050,
		AdvertiseIP:          "10.0.0.1",
		Quorum:               2,
		Lease:                2 * time.Second,
		RegistryStoreTimeout: 20 * time.Second,
		RegistryFetchTimeout: time.Minute,
		Ready:                func() { /* sd_notify READY=1 through the supervisor */ },
		Heartbeat:            func(status string) { /* STATUS= and WATCHDOG=1 */ _ = status },
	}
	m, err := master.New(cfg, lg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	code := 0
	if err := m.Run(ctx); err != nil {
		var ee *master.ExitError
		if errors.As(err, &ee) {
			code = ee.Code // 78: do not restart; otherwise restart with backoff
		} else {
			code = 1
		}
	}
	fmt.Println("exit", code)
}
