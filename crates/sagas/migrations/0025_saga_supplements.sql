-- The payments of move differences whose charge a fulfilment saga started
-- (a JSON array of payment ids): like `charge_started` for the booking's
-- first payment, a started charge's outcome is learnt from the provider,
-- never assumed, so an abandoned move never leaves money taken unseen.
ALTER TABLE sagas ADD COLUMN supplements_charged jsonb NOT NULL DEFAULT '[]';
