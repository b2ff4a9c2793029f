-- +goose Up
-- The booking path writes a booking and its event in one statement on
-- PostgreSQL (sqlstore's bookOne): when the dose is sold out its outbox
-- insert inserts no row, and a statement trigger fires all the same. The
-- trigger now sees the statement's rows (a transition table) and
-- notifies only when there are some, so a storm of sold-out answers does
-- not wake the relays for nothing.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('yeyak.outbox_notify', true), '') <> 'after_commit'
        AND EXISTS (SELECT 1 FROM inserted) THEN
        PERFORM pg_notify('yeyak_outbox', '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TRIGGER outbox_notify ON outbox;
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
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
