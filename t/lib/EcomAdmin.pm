package EcomAdmin;
# scripts/ecom-admin from the tests (t/45-account.t, t/46-roles.t):
# ecom_admin(@args) runs it with the test environment (PGHOST, PGPORT...)
# and returns { rc, out, err }. ECOM_PASSWORD is passed through %ENV by
# the caller when a command needs one.
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempfile);
use POSIX ();
use EcomTest qw(ecom_root);

our @EXPORT = qw(ecom_admin);

sub ecom_admin {
    my (@args) = @_;
    my $admin = ecom_root() . '/scripts/ecom-admin';
    my (undef, $outf) = tempfile(UNLINK => 1);
    my (undef, $errf) = tempfile(UNLINK => 1);
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDOUT, '>', $outf or POSIX::_exit(126);
        open STDERR, '>', $errf or POSIX::_exit(126);
        { exec 'bash', $admin, @args }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? >> 8;
    my $slurp = sub { open my $fh, '<', $_[0] or return ''; local $/; <$fh> // '' };
    return { rc => $rc, out => $slurp->($outf), err => $slurp->($errf) };
}

1;
