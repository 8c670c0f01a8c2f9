-- A lab admin's password reset (issue 11 point 8): the admin sets a temporary password, and the
-- user must change it at their next sign-in before anything else. The flag is set by the reset
-- (`Store::reset_password`, audited `user.password_reset` with who, when and why) and cleared by
-- any other password change (`Store::set_password`: the user's own change on the account page, or
-- the console's `ferrocount user passwd`). While it is set the pages lead only to the account
-- page and the JSON API refuses the account (`operations::account::refuse_until_password_changed`).

ALTER TABLE users ADD COLUMN password_change_required INTEGER NOT NULL DEFAULT 0
    CHECK (password_change_required IN (0, 1));
