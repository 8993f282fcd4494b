//! Command bytes: the first byte of every packet a client sends after the handshake.

pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PING: u8 = 0x0e;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1a;
pub const COM_SET_OPTION: u8 = 0x1b;
pub const COM_STMT_FETCH: u8 = 0x1c;
pub const COM_RESET_CONNECTION: u8 = 0x1f;

/// The payload of a command packet: the command byte, then its argument (a statement's text for COM_QUERY and
/// COM_STMT_PREPARE).
pub fn command_packet(command: u8, argument: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(argument.len() + 1);
    payload.push(command);
    payload.extend_from_slice(argument);
    payload
}
