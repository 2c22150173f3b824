-- First start of the compose PostgreSQL: one database per service.
CREATE DATABASE relance_invoice_api;
CREATE DATABASE relance_scheduler;
CREATE DATABASE relance_notifier;
CREATE DATABASE relance_payment_matcher;
