-- A delivery that is authentic but that nothing binds to an account (the payer matched only
-- by an address they typed, or a special plan bought without our reference) is kept as
-- 'review' for an admin: it is answered 200 (the vendor stops retrying) and grants nothing.
ALTER TABLE payment_events DROP CONSTRAINT IF EXISTS payment_events_status_check;
ALTER TABLE payment_events ADD CONSTRAINT payment_events_status_check
    CHECK (status IN ('received', 'applied', 'ignored', 'rejected', 'review'));
