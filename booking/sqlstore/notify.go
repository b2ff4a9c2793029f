package sqlstore

import (
	"context"
	"net/url"
	"sync"
	"time"
)

// NotifyMode says when, on PostgreSQL, the store signals the yeyak_outbox
// channel that relays LISTEN on.
type NotifyMode string

const (
	// NotifyInTx (the default) notifies inside each transaction that
	// writes outbox rows (a statement trigger), delivered at commit. NOTIFY
	// holds a database-wide lock from just before commit until the commit
	// is flushed, so committing bookings serialize: on the shared 2-core
	// test machine, about 3.5× fewer bookings/s (see BenchmarkBookPostgres).
	NotifyInTx NotifyMode = "in_tx"
	// NotifyAfterCommit turns the trigger off for the store's sessions and
	// sends one coalesced notification from a background goroutine after
	// commits that wrote outbox rows. A crash between commit and notify
	// loses the wake-up, never the row: relays poll as well.
	NotifyAfterCommit NotifyMode = "after_commit"
)

// notifyGUC is the session setting the outbox_notify trigger reads.
const notifyGUC = "yeyak.outbox_notify"

// withNotifyParam adds the session setting that silences the trigger to a
// postgres:// URL (pgx sends unknown URL parameters as session settings).
func withNotifyParam(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(notifyGUC, string(NotifyAfterCommit))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// notifier sends pg_notify('yeyak_outbox', ”) after commits, coalescing
// kicks that arrive while one is being sent; every kick is followed by a
// notification that starts after it.
type notifier struct {
	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

func (db *DB) startNotifier() {
	n := &notifier{kick: make(chan struct{}, 1), stop: make(chan struct{})}
	db.notify = n
	n.wg.Go(func() {
		send := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := db.x.ExecContext(ctx, "SELECT pg_notify('yeyak_outbox', '')"); err != nil {
				db.log.Warn("outbox notify failed; relays will find the rows by polling", "err", err)
			}
		}
		for {
			select {
			case <-n.stop:
				select {
				case <-n.kick: // a commit is waiting for its signal
					send()
				default:
				}
				return
			case <-n.kick:
				send()
			}
		}
	})
}

// outboxCommitted is called after a commit that wrote outbox rows.
func (db *DB) outboxCommitted() {
	if db.notify == nil {
		return
	}
	select {
	case db.notify.kick <- struct{}{}:
	default: // one is pending already; it starts after this commit
	}
}

func (n *notifier) close() {
	close(n.stop)
	n.wg.Wait()
}
