<?php
// Connects to MariaDB over its unix socket in the jail, makes a table,
// adds a row and prints it, with the row's time in the shop's time zone
// (Debian's PHP reads the system's zoneinfo on the first request that
// needs a zone: a file only a request reads). Any failure answers 500
// with the reason.
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
try {
    date_default_timezone_set('America/New_York');
    $db = new mysqli(null, 'lamp', 'lamp', 'lamp', 0, '/run/mysqld/mysqld.sock');
    $db->query('CREATE TABLE IF NOT EXISTS visits (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(64), at BIGINT)');
    $stmt = $db->prepare('INSERT INTO visits (note, at) VALUES (?, ?)');
    $note = 'hello from the jail';
    $at = 0;
    $stmt->bind_param('si', $note, $at);
    $stmt->execute();
    $row = $db->query('SELECT id, note, at FROM visits ORDER BY id DESC LIMIT 1')->fetch_assoc();
    echo "row {$row['id']}: {$row['note']} at ", date('Y-m-d H:i T', (int) $row['at']), "\n";
} catch (Throwable $e) {
    http_response_code(500);
    echo 'error: ', $e->getMessage(), "\n";
}
