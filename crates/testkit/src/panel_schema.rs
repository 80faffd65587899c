//! The seized-panel MySQL schema that tests load synthetic rows into.
//!
//! The ZeuS 2.0.8.9 `botnet_reports` template as the panel's installer creates it
//! (`../shared/design/formats/drops-and-sharing.md` §1.1); the gate creates each day table
//! `botnet_reports_YYMMDD` `LIKE` it.

/// The MariaDB/MySQL server tests use, as an admin URL without a database
/// (`DROPWATCH_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306`).
pub fn mysql_admin_url() -> String {
    std::env::var("DROPWATCH_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_string())
}

/// `CREATE TABLE botnet_reports (...)`: the ZeuS 2.0.8.9 report template.
pub const ZEUS_REPORTS_TEMPLATE: &str = "CREATE TABLE botnet_reports (
    id int unsigned NOT NULL auto_increment PRIMARY KEY,
    bot_id varchar(100) NOT NULL default '',
    botnet varchar(20) NOT NULL default '-- default --',
    bot_version int unsigned NOT NULL default 0,
    path_source text NOT NULL,
    path_dest text NOT NULL,
    time_system int unsigned NOT NULL default 0,
    time_tick int unsigned NOT NULL default 0,
    time_localbias int NOT NULL default 0,
    os_version tinyblob NOT NULL,
    language_id smallint unsigned NOT NULL default 0,
    process_name text NOT NULL,
    process_user text NOT NULL,
    type int unsigned NOT NULL default 0,
    context longtext NOT NULL,
    ipv4 varbinary(15) NOT NULL default '0.0.0.0',
    country varchar(2) NOT NULL default '--',
    rtime int unsigned NOT NULL default 0
) ENGINE=MyISAM CHARACTER SET utf8 COLLATE utf8_unicode_ci";
