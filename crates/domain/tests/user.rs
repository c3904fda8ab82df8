mod common;

use common::*;
use domain::testing::given;
use domain::user::*;
use domain::values::{Email, Personal, Role};

fn register() -> UserCommand {
    UserCommand::Register {
        user_id: id(CUSTOMER),
        email: Email::parse("ada@example.com").unwrap(),
        full_name: " Ada Lovelace ".into(),
        role: Role::Customer,
        now: t0(),
    }
}

fn profile() -> UserPersonal {
    UserPersonal {
        email: Email::parse("ada@example.com").unwrap(),
        full_name: "Ada Lovelace".into(),
        phone: None,
    }
}

fn registered() -> UserEvent {
    UserEvent::UserRegistered(UserRegistered {
        user_id: id(CUSTOMER),
        subject: id(CUSTOMER),
        role: Role::Customer,
        personal: Personal::Known(profile()),
        registered_at: t0(),
    })
}

fn erased() -> UserEvent {
    UserEvent::UserErased(UserErased {
        user_id: id(CUSTOMER),
        subject: id(CUSTOMER),
        erased_at: t0(),
    })
}

#[test]
fn it_should_register_a_user_with_personal_data_keyed_by_the_user() {
    let user = given::<User>([]).when(register()).then([registered()]);
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.role, Some(Role::Customer));
}

#[test]
fn it_should_not_register_a_user_twice() {
    given::<User>([registered()])
        .when(register())
        .then_err(UserError::AlreadyRegistered);
}

#[test]
fn it_should_not_register_a_user_without_a_name() {
    let UserCommand::Register {
        user_id,
        email,
        role,
        now,
        ..
    } = register()
    else {
        unreachable!()
    };
    let err = given::<User>([])
        .when(UserCommand::Register {
            user_id,
            email,
            full_name: "  ".into(),
            role,
            now,
        })
        .result()
        .clone()
        .unwrap_err();
    assert_eq!(err, UserError::InvalidFullName);
    assert_eq!(err.field(), Some("full_name"));
}

#[test]
fn it_should_update_the_profile_with_the_whole_new_profile() {
    let updated = UserPersonal {
        phone: Some("+44 20 7946 0958".into()),
        full_name: "Ada King".into(),
        ..profile()
    };
    let user = given::<User>([registered()])
        .when(UserCommand::UpdateProfile {
            full_name: Some("Ada King".into()),
            phone: Some("+44 20 7946 0958".into()),
            now: t0(),
        })
        .then([UserEvent::UserProfileUpdated(UserProfileUpdated {
            user_id: id(CUSTOMER),
            subject: id(CUSTOMER),
            personal: Personal::Known(updated.clone()),
            updated_at: t0(),
        })]);
    assert_eq!(user.personal, Personal::Known(updated));
}

#[test]
fn it_should_treat_an_unchanged_profile_as_nothing_to_record() {
    given::<User>([registered()])
        .when(UserCommand::UpdateProfile {
            full_name: Some("Ada Lovelace".into()),
            phone: None,
            now: t0(),
        })
        .then([]);
}

#[test]
fn it_should_refuse_an_invalid_phone_number() {
    given::<User>([registered()])
        .when(UserCommand::UpdateProfile {
            full_name: None,
            phone: Some("call me".into()),
            now: t0(),
        })
        .then_err(UserError::InvalidPhone);
}

#[test]
fn it_should_not_update_an_unregistered_user() {
    given::<User>([])
        .when(UserCommand::UpdateProfile {
            full_name: Some("X".into()),
            phone: None,
            now: t0(),
        })
        .then_err(UserError::NotRegistered);
}

#[test]
fn it_should_change_a_role_and_remember_the_previous_one() {
    let user = given::<User>([registered()])
        .when(UserCommand::ChangeRole {
            role: Role::Agent,
            now: t0(),
        })
        .then([UserEvent::UserRoleChanged(UserRoleChanged {
            user_id: id(CUSTOMER),
            role: Role::Agent,
            previous_role: Role::Customer,
            changed_at: t0(),
        })]);
    assert_eq!(user.role, Some(Role::Agent));
}

#[test]
fn it_should_treat_granting_the_current_role_as_nothing_to_record() {
    given::<User>([registered()])
        .when(UserCommand::ChangeRole {
            role: Role::Customer,
            now: t0(),
        })
        .then([]);
}

#[test]
fn it_should_erase_a_user_and_forget_their_personal_data() {
    let user = given::<User>([registered()])
        .when(UserCommand::Erase { now: t0() })
        .then([erased()]);
    assert_eq!(user.status, UserStatus::Erased);
    assert!(user.personal.is_erased());
}

#[test]
fn it_should_refuse_everything_once_a_user_is_erased() {
    given::<User>([registered(), erased()])
        .when(UserCommand::Erase { now: t0() })
        .then_err(UserError::Erased);
    given::<User>([registered(), erased()])
        .when(UserCommand::ChangeRole {
            role: Role::Admin,
            now: t0(),
        })
        .then_err(UserError::Erased);
    given::<User>([registered(), erased()])
        .when(UserCommand::UpdateProfile {
            full_name: Some("X".into()),
            phone: None,
            now: t0(),
        })
        .then_err(UserError::Erased);
    given::<User>([registered(), erased()])
        .when(register())
        .then_err(UserError::AlreadyRegistered);
}

#[test]
fn it_should_fold_a_registration_whose_personal_data_was_shredded() {
    let UserEvent::UserRegistered(mut e) = registered() else {
        unreachable!()
    };
    e.personal = Personal::Erased;
    let user = given::<User>([UserEvent::UserRegistered(e)])
        .state()
        .clone();
    assert_eq!(user.status, UserStatus::Active);
    assert!(user.personal.is_erased());
    given::<User>([]).when(register()).then_ok();
}

fn suspend(reason: &str) -> UserCommand {
    UserCommand::Suspend {
        reason: reason.into(),
        now: t0(),
    }
}

fn suspended() -> UserEvent {
    UserEvent::UserSuspended(UserSuspended {
        user_id: id(CUSTOMER),
        reason: "chargeback fraud".into(),
        suspended_at: t0(),
    })
}

fn reactivated() -> UserEvent {
    UserEvent::UserReactivated(UserReactivated {
        user_id: id(CUSTOMER),
        reactivated_at: t0(),
    })
}

#[test]
fn it_should_suspend_an_active_user_with_the_reason() {
    let user = given::<User>([registered()])
        .when(suspend("  chargeback fraud "))
        .then([suspended()]);
    assert_eq!(user.status, UserStatus::Suspended);
    assert_eq!(user.suspension_reason.as_deref(), Some("chargeback fraud"));
    assert!(!user.may_act());
}

#[test]
fn it_should_not_suspend_without_a_reason() {
    given::<User>([registered()])
        .when(suspend("   "))
        .then_err(UserError::InvalidReason);
    given::<User>([registered()])
        .when(suspend(&"x".repeat(MAX_REASON_LEN + 1)))
        .then_err(UserError::InvalidReason);
}

#[test]
fn it_should_treat_suspending_a_suspended_user_as_nothing_to_record() {
    given::<User>([registered(), suspended()])
        .when(suspend("again"))
        .then([]);
}

#[test]
fn it_should_reactivate_a_suspended_user() {
    let user = given::<User>([registered(), suspended()])
        .when(UserCommand::Reactivate { now: t0() })
        .then([reactivated()]);
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.suspension_reason, None);
    assert!(user.may_act());
}

#[test]
fn it_should_treat_reactivating_an_active_user_as_nothing_to_record() {
    given::<User>([registered()])
        .when(UserCommand::Reactivate { now: t0() })
        .then([]);
    given::<User>([registered(), suspended(), reactivated()])
        .when(UserCommand::Reactivate { now: t0() })
        .then([]);
}

#[test]
fn it_should_still_erase_a_suspended_user() {
    let user = given::<User>([registered(), suspended()])
        .when(UserCommand::Erase { now: t0() })
        .then([erased()]);
    assert_eq!(user.status, UserStatus::Erased);
}

#[test]
fn it_should_neither_suspend_nor_reactivate_an_erased_or_unknown_user() {
    given::<User>([registered(), erased()])
        .when(suspend("fraud"))
        .then_err(UserError::Erased);
    given::<User>([registered(), erased()])
        .when(UserCommand::Reactivate { now: t0() })
        .then_err(UserError::Erased);
    given::<User>([])
        .when(suspend("fraud"))
        .then_err(UserError::NotRegistered);
}

const TOKEN_1: u128 = 9001;
const TOKEN_2: u128 = 9002;

fn request_reset(token: u128) -> UserCommand {
    UserCommand::RequestPasswordReset {
        token_id: id(token),
        expires_at: t0() + minutes(60),
        now: t0(),
    }
}

fn reset_requested(token: u128) -> UserEvent {
    UserEvent::PasswordResetRequested(PasswordResetRequested {
        user_id: id(CUSTOMER),
        token_id: id(token),
        expires_at: t0() + minutes(60),
        requested_at: t0(),
    })
}

fn reset_with(token: u128, after: i64) -> UserCommand {
    UserCommand::ResetPassword {
        token_id: id(token),
        now: t0() + minutes(after),
    }
}

#[test]
fn it_should_record_a_reset_request_naming_the_token_but_not_holding_it() {
    let user = given::<User>([registered()])
        .when(request_reset(TOKEN_1))
        .then([reset_requested(TOKEN_1)]);
    assert_eq!(user.pending_reset, Some((id(TOKEN_1), t0() + minutes(60))));
}

#[test]
fn it_should_send_no_reset_to_a_suspended_user_nor_to_an_erased_one() {
    given::<User>([registered(), suspended()])
        .when(request_reset(TOKEN_1))
        .then([]);
    given::<User>([registered(), erased()])
        .when(request_reset(TOKEN_1))
        .then_err(UserError::Erased);
}

#[test]
fn it_should_reset_a_password_once_with_the_newest_token_before_it_expires() {
    let user = given::<User>([registered(), reset_requested(TOKEN_1)])
        .when(reset_with(TOKEN_1, 59))
        .then([UserEvent::PasswordReset(PasswordReset {
            user_id: id(CUSTOMER),
            token_id: id(TOKEN_1),
            reset_at: t0() + minutes(59),
        })]);
    assert_eq!(user.pending_reset, None);
    // Spent: the same token again is refused.
    let spent = UserEvent::PasswordReset(PasswordReset {
        user_id: id(CUSTOMER),
        token_id: id(TOKEN_1),
        reset_at: t0() + minutes(59),
    });
    given::<User>([registered(), reset_requested(TOKEN_1), spent])
        .when(reset_with(TOKEN_1, 59))
        .then_err(UserError::InvalidToken);
}

#[test]
fn it_should_refuse_an_expired_an_older_or_an_unknown_reset_token() {
    given::<User>([registered(), reset_requested(TOKEN_1)])
        .when(reset_with(TOKEN_1, 60))
        .then_err(UserError::InvalidToken);
    given::<User>([
        registered(),
        reset_requested(TOKEN_1),
        reset_requested(TOKEN_2),
    ])
    .when(reset_with(TOKEN_1, 1))
    .then_err(UserError::InvalidToken);
    given::<User>([registered()])
        .when(reset_with(TOKEN_1, 1))
        .then_err(UserError::InvalidToken);
    given::<User>([])
        .when(reset_with(TOKEN_1, 1))
        .then_err(UserError::InvalidToken);
    given::<User>([registered(), reset_requested(TOKEN_1), suspended()])
        .when(reset_with(TOKEN_1, 1))
        .then_err(UserError::InvalidToken);
}

#[test]
fn it_should_verify_an_email_once() {
    let verified = UserEvent::EmailVerified(EmailVerified {
        user_id: id(CUSTOMER),
        verified_at: t0(),
    });
    let user = given::<User>([registered()])
        .when(UserCommand::VerifyEmail { now: t0() })
        .then([verified.clone()]);
    assert!(user.email_verified);
    given::<User>([registered(), verified])
        .when(UserCommand::VerifyEmail { now: t0() })
        .then([]);
    given::<User>([])
        .when(UserCommand::VerifyEmail { now: t0() })
        .then_err(UserError::InvalidToken);
}
