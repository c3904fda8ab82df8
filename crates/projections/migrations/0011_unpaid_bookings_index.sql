-- The hold caps count a customer's unpaid bookings on every new booking:
-- reach them without reading the customer's whole history.
CREATE INDEX rm_bookings_unpaid ON rm_bookings (customer_id)
    WHERE status IN ('HELD', 'PAYMENT_PENDING');
