-- Whether the user proved they read mail at their address (`me.emailVerified`).
ALTER TABLE rm_users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
