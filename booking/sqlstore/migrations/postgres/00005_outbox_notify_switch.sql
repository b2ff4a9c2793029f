-- +goose Up
-- A session that sets yeyak.outbox_notify = 'after_commit' (the store with
-- Options.OutboxNotify = NotifyAfterCommit) signals yeyak_outbox itself
-- after its commits: NOTIFY in a transaction holds a database-wide lock
-- through the commit's WAL flush, which serializes every committing
-- booking. Every other writer still notifies in its transaction.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('yeyak.outbox_notify', true), '') <> 'after_commit' THEN
        PERFORM pg_notify('yeyak_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('yeyak_outbox', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
