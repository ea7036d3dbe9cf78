#!/usr/bin/perl
# The Debian package (issue 11, part 1): `make deb` builds
# libapache2-mod-ecom_<version>_<arch>.deb (lintian: no errors) without
# leaving anything in the working tree; the package, installed on a clean
# system (a debootstrap --variant=minbase chroot of the host's release, apt
# resolving the dependencies from the package's Depends alone), is not
# enabled by the install, `a2enmod ecom` enables it with mod_dbd and
# mod_socache_shmcb, ecom-admin runs from PATH and migrates a fresh database
# of the suite's PostgreSQL with the packaged migrations, `apache2ctl
# configtest` passes, the chroot's own apache2 with the packaged module
# answers GET /health/ (and the catalogue) on HTTP_PORT+100, and `dpkg
# --purge` removes every file of the package and leaves a configuration
# that still passes configtest.
#
# Runs in pass 1 only (packaging, not memory safety) and as root (debootstrap,
# chroot, mount). The chroot lives in build/deb-test-<port>/, removed at the
# end; its /proc is unmounted and its apache2 stopped in an END block however
# the test ends. Services never start by themselves in the chroot
# (policy-rc.d), so its apache2 never binds port 80 of the shared network.
# Needs the Debian mirror of the host's apt sources.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
plan skip_all => 'packaging, not memory safety: runs in the plain pass only'
    if $ENV{ECOM_SANITIZED};
plan skip_all => 'needs root (debootstrap, chroot, mount, dpkg)' if $> != 0;

my $root = $ENV{ECOM_ROOT} // "$FindBin::Bin/..";
my ($base_port) = $ENV{ECOM_URL} =~ /:(\d+)\/?\z/ or die "no port in ECOM_URL\n";
my $port  = $base_port + 100;
my $dir   = "$root/build/deb-test-$base_port";
my $db    = "ecom_deb_$base_port";
my $t0    = time;
my %took;

# ---- clean-up, however the test ends -----------------------------------------
my ($mounted, $db_made) = (0, 0);
sub chroot_pid {
    open my $fh, '<', "$dir/run/apache2/apache2.pid" or return;
    my $pid = <$fh> // return;
    chomp $pid;
    return $pid =~ /\A\d+\z/ ? $pid : undef;
}
sub stop_chroot_httpd {
    my $pid = chroot_pid() // return;
    kill 'TERM', $pid or return;
    for (1 .. 100) { last unless kill 0, $pid; sleep 0.1 }
    kill 'KILL', $pid if kill 0, $pid;
}
sub mounts_under {
    open my $fh, '<', '/proc/mounts' or return;
    my @m;
    while (<$fh>) {
        my $mp = (split ' ')[1];
        push @m, $mp if index($mp, "$dir/") == 0;
    }
    my @innermost_first = reverse @m;
    return @innermost_first;
}
my $owner = $$;
my $bootstrap_pid;
END {
    if (defined $owner && $$ == $owner) {   # not set when skipped
        my $rc = $?;
        if ($bootstrap_pid && kill 0, $bootstrap_pid) {
            kill 'TERM', -$bootstrap_pid;     # its process group: wget, dpkg...
            waitpid $bootstrap_pid, 0;
        }
        unlink "$root/build/deb-test-$base_port.debootstrap.log";
        stop_chroot_httpd();
        for my $mp (mounts_under()) {
            system('umount', $mp) == 0 or system('umount', '-l', $mp);
        }
        drop_db() if $db_made;
        # nothing is mounted any more: remove the chroot (never through a mount)
        system('rm', '-rf', '--one-file-system', $dir) if -d $dir && !mounts_under();
        $? = $rc;
    }
}

# run(@cmd) in the host; inchroot(@cmd): in the chroot, with a plain
# environment. Both return (exit status, output).
sub run {
    my $out = '';
    open my $fh, '-|' or do { open STDERR, '>&', \*STDOUT; exec @_ or exit 127 };
    local $/;
    $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}
my @PG_ENV = ("PGHOST=$ENV{PGHOST}", "PGPORT=$ENV{PGPORT}", "PGUSER=$ENV{PGUSER}");
sub inchroot {
    return run('chroot', $dir, '/usr/bin/env', '-i',
               'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
               'LC_ALL=C', 'DEBIAN_FRONTEND=noninteractive', 'HOME=/root', @_);
}
# inchroot, tried up to three times while it fails (the mirror is the
# network): the last try's (rc, output)
sub inchroot_tries {
    my ($rc, $out);
    for my $try (1 .. 3) {
        ($rc, $out) = inchroot(@_);
        last if $rc == 0;
        diag "$_[0] $_[1], try $try: $out";
        sleep 5 * $try if $try < 3;
    }
    return ($rc, $out);
}
sub spew {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!\n";
    print $fh $text;
    close $fh or die "$path: $!\n";
}
sub drop_db {
    local $ENV{PGOPTIONS} = '-c client_min_messages=warning';
    psql_do(qq{DROP DATABASE IF EXISTS "$db" WITH (FORCE)});
}

my ($rc, $out);

# ---- a clean system: debootstrap, beside make deb ----------------------------
# The host's release and its Debian mirrors (main, -updates, -security), from
# the apt sources (deb822 .sources or one-line sources.list).
my ($codename) = (slurp_file('/etc/os-release') // '') =~ /^VERSION_CODENAME=(\w+)/m;
my (%uri, $text);
$text = join "\n", map { slurp_file($_) // '' } '/etc/apt/sources.list',
    glob('/etc/apt/sources.list.d/*.list'), glob('/etc/apt/sources.list.d/*.sources');
for my $stanza (split /\n\s*\n/, $text) {
    # deb822: URIs + Suites in one stanza
    if ($stanza =~ /^URIs:\s*(\S+)/mi) {
        my $u = $1;
        my ($suites) = $stanza =~ /^Suites:\s*(.+)$/mi;
        for my $s (split ' ', $suites // '') {
            $uri{$s} //= $u if $s =~ /\A\Q$codename\E(?:-updates|-security)?\z/;
        }
    }
    while ($stanza =~ /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/mg) {
        my ($u, $s) = ($1, $2);
        $uri{$s} //= $u if $s =~ /\A\Q$codename\E(?:-updates|-security)?\z/;
    }
}
ok $codename && $uri{$codename}, "a Debian mirror for $codename in the apt sources"
    or BAIL_OUT('no Debian mirror in the apt sources');

system('rm', '-rf', '--one-file-system', $dir) if -d $dir && !mounts_under();
# debootstrap (network and disk) runs while make deb compiles (CPU)
my $t_boot = time;
$bootstrap_pid = fork // die "fork: $!\n";
if (!$bootstrap_pid) {
    setpgrp(0, 0);
    open STDOUT, '>', "$root/build/deb-test-$base_port.debootstrap.log" or exit 127;
    open STDERR, '>&', \*STDOUT;
    # the mirror is the network: a failed try is retried twice, from scratch
    my $st = 1;
    for my $try (1 .. 3) {
        $st = system('debootstrap', '--variant=minbase', $codename, $dir, $uri{$codename});
        last if $st == 0;
        print "==> debootstrap try $try failed (status $st)\n";
        system('rm', '-rf', '--one-file-system', $dir) if !mounts_under();
        sleep 5 * $try if $try < 3;
    }
    POSIX::_exit($st == 0 ? 0 : 1);
}

# ---- make deb -------------------------------------------------------------------
my $git = -d "$root/.git" || -f "$root/.git";
my $status_before = $git ? (run('git', '-C', $root, 'status', '--porcelain', '--ignored=no'))[1] : '';
my $t = time;
($rc, $out) = run('make', '-C', $root, '--no-print-directory', 'deb');
$took{'make deb'} = time - $t;
is $rc, 0, 'make deb succeeds (dpkg-buildpackage, lintian without errors)'
    or BAIL_OUT("make deb failed:\n$out");
my ($version) = `cd $root && dpkg-parsechangelog -SVersion` =~ /(\S+)/;
my ($arch)    = `dpkg --print-architecture` =~ /(\S+)/;
my $openapi   = json_decode(slurp_file("$root/openapi/openapi.json"));
is $version, $openapi->{info}{version}, "debian/changelog's version is the project's ($version)";
my $deb = "$root/build/deb/libapache2-mod-ecom_${version}_${arch}.deb";
ok -f $deb, "build/deb/libapache2-mod-ecom_${version}_${arch}.deb" or BAIL_OUT('no .deb');
if ($git) {
    my $status_after = (run('git', '-C', $root, 'status', '--porcelain', '--ignored=no'))[1];
    is $status_after, $status_before, 'make deb leaves the working tree as it was';
}
my @fields = split /\n/, `dpkg-deb -f $deb Depends`;
my $depends = join ' ', @fields;
like $depends, qr/\bapache2-api-\d+\b/, 'Depends on the Apache module ABI (dh_apache2)';
like $depends, qr/\blibaprutil1-dbd-pgsql\b/, 'Depends on mod_dbd\'s PostgreSQL driver';
like $depends, qr/\blibjansson4\b.*\blibpq5\b|\blibpq5\b.*\blibjansson4\b/,
    'Depends on the shared libraries (shlibs)';

waitpid $bootstrap_pid, 0;
$rc = $? >> 8;
$bootstrap_pid = undef;
$took{debootstrap} = time - $t_boot;
$out = slurp_file("$root/build/deb-test-$base_port.debootstrap.log") // '';
unlink "$root/build/deb-test-$base_port.debootstrap.log";
is $rc, 0, "debootstrap --variant=minbase $codename" or BAIL_OUT("debootstrap failed:\n$out");

system('mount', '-t', 'proc', 'proc', "$dir/proc") == 0 or BAIL_OUT('cannot mount proc');
spew("$dir/usr/sbin/policy-rc.d", "#!/bin/sh\n# no service starts by itself here\nexit 101\n");
chmod 0755, "$dir/usr/sbin/policy-rc.d";
spew("$dir/etc/resolv.conf", slurp_file('/etc/resolv.conf') // '');
spew("$dir/etc/apt/sources.list",
     join '', map { "deb $uri{$_} $_ main\n" } grep { $uri{$_} } sort keys %uri);
system('cp', $deb, "$dir/tmp/") == 0 or BAIL_OUT('cannot copy the .deb');
my $deb_in = "/tmp/libapache2-mod-ecom_${version}_${arch}.deb";

# apache2 (a2enmod, apache2ctl) and the package with its Depends only: the
# module must run with what Depends brings in.
$t = time;
($rc, $out) = inchroot_tries('apt-get', 'update', '-qq');
is $rc, 0, 'apt-get update in the chroot' or diag $out;
($rc, $out) = inchroot_tries('apt-get', 'install', '-y', '-qq', '--no-install-recommends',
                             'apache2', $deb_in);
$took{'apt-get install'} = time - $t;
is $rc, 0, 'apt-get install apache2 ./libapache2-mod-ecom_*.deb' or BAIL_OUT("install failed:\n$out");

# ---- what the package holds -------------------------------------------------------
($rc, $out) = inchroot('dpkg', '-L', 'libapache2-mod-ecom');
my %files = map { $_ => 1 } split /\n/, $out;
for my $f (qw(/usr/lib/apache2/modules/mod_ecom.so /etc/apache2/mods-available/ecom.load
              /etc/apache2/mods-available/ecom.conf /usr/sbin/ecom-admin
              /usr/share/mod-ecom/scripts/ecom-admin /usr/share/mod-ecom/scripts/migrate.sh
              /usr/share/mod-ecom/scripts/lib.sh /usr/libexec/mod-ecom/ecom-passwd
              /usr/share/man/man8/ecom-admin.8.gz
              /usr/share/doc/libapache2-mod-ecom/README.Debian
              /usr/share/doc/libapache2-mod-ecom/copyright)) {
    ok $files{$f} && (-e "$dir$f" || -l "$dir$f"), "dpkg -L: $f";
}
my @sql = map { s{.*/}{}r } glob("$root/sql/[0-9][0-9][0-9]_*.sql");
my @missing = grep { !$files{"/usr/share/mod-ecom/sql/$_"} } @sql;
ok @sql && !@missing, 'dpkg -L: every migration (' . scalar(@sql) . ') in /usr/share/mod-ecom/sql'
    or diag "missing: @missing";
is readlink("$dir/usr/sbin/ecom-admin"), '../share/mod-ecom/scripts/ecom-admin',
    '/usr/sbin/ecom-admin is a relative symlink';
like slurp_file("$dir/etc/apache2/mods-available/ecom.load") // '',
    qr/^# Depends: dbd socache_shmcb unique_id\s*\nLoadModule ecom_module \/usr\/lib\/apache2\/modules\/mod_ecom\.so$/m,
    'ecom.load: LoadModule, with mod_dbd, mod_socache_shmcb and mod_unique_id (request ids) as a2enmod dependencies';
is slurp_file("$dir/etc/apache2/mods-available/ecom.conf"), slurp_file("$root/conf/ecom.conf"),
    'ecom.conf is conf/ecom.conf (every directive with its default)';
ok !-e "$dir/etc/apache2/mods-enabled/ecom.load", 'the install does not enable the module';

($rc, $out) = inchroot('ecom-admin', '--help');
is $rc, 0, 'ecom-admin --help from PATH';
like $out, qr/^usage: ecom-admin migrate$/m, '... prints the usage';
($rc, $out) = inchroot('ecom-admin', 'no-such-command');
is $rc, 2, 'ecom-admin with an unknown command: exit 2';

# ---- enable, migrate, configure, serve -------------------------------------------
($rc, $out) = inchroot('a2enmod', 'ecom');
is $rc, 0, 'a2enmod ecom' or diag $out;
ok -l "$dir/etc/apache2/mods-enabled/$_.load", "... enables $_"
    for qw(ecom dbd socache_shmcb unique_id);
# enabled with nothing configured yet (Debian's default site): still valid
($rc, $out) = inchroot('apache2ctl', 'configtest');
is $rc, 0, 'apache2ctl configtest right after a2enmod ecom' or diag $out;

# a fresh database of the suite's cluster, migrated by the packaged ecom-admin
drop_db();
psql_do(qq{CREATE DATABASE "$db"});
$db_made = 1;
($rc, $out) = inchroot(@PG_ENV, "PGDATABASE=$db", 'ecom-admin', 'migrate');
is $rc, 0, 'ecom-admin migrate (packaged migrations, from PATH)' or diag $out;
like $out, qr/applied (\d+) migration/, '... applies them' and do {
    my ($n) = $out =~ /applied (\d+) migration/;
    is $n, scalar @sql, "... all $n of them";
};
($rc, $out) = inchroot(@PG_ENV, "PGDATABASE=$db", 'ecom-admin', 'migrate');
like $out, qr/up to date/, 'ecom-admin migrate again: up to date';

# Listen on the extra port only (never port 80: the network is the host's)
spew("$dir/etc/apache2/ports.conf", "Listen 127.0.0.1:$port\n");
spew("$dir/etc/apache2/sites-available/ecom-test.conf", <<"EOF");
<VirtualHost 127.0.0.1:$port>
    ServerName localhost
    DBDriver pgsql
    DBDParams "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$db user=$ENV{PGUSER} connect_timeout=2"
    DBDPersist On
    DBDMin 1
    DBDKeep 1
    DBDMax 2
    <Location "/">
        SetHandler ecom
    </Location>
</VirtualHost>
EOF
($rc, $out) = inchroot('a2dissite', '000-default');
is $rc, 0, 'a2dissite 000-default' or diag $out;
($rc, $out) = inchroot('a2ensite', 'ecom-test');
is $rc, 0, 'a2ensite ecom-test' or diag $out;
($rc, $out) = inchroot('apache2ctl', 'configtest');
is $rc, 0, 'apache2ctl configtest' or diag $out;
like $out, qr/Syntax OK/, '... Syntax OK';

($rc, $out) = inchroot('apache2ctl', 'start');
is $rc, 0, 'apache2ctl start in the chroot' or diag $out;
my $up;
for (1 .. 100) {
    $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1)
        and last;
    sleep 0.1;
}
ok $up, "apache2 listens on 127.0.0.1:$port" or diag slurp_file("$dir/var/log/apache2/error.log");
close $up if $up;
my $url = "http://127.0.0.1:$port";
my $r = api(GET => '/health/', base => $url);
is $r->{status}, 200, 'GET /health/ from the packaged module: 200'
    or diag "$r->{content}\n", slurp_file("$dir/var/log/apache2/error.log") // '';
is_deeply $r->{json}, { status => 'ok', database => 'ok' }, '... with the database round trip';
$r = api(GET => '/products/', base => $url);
is $r->{status}, 200, 'GET /products/ on the freshly migrated database: 200';
is_deeply $r->{json}{items}, [], '... an empty catalogue';
# create-staff hashes with the packaged ecom-passwd; the module checks the hash
($rc, $out) = inchroot(@PG_ENV, "PGDATABASE=$db", 'ECOM_PASSWORD=packaged staff pw',
                       'ecom-admin', 'create-staff', '--email', 'ops@deb.example');
is $rc, 0, 'ecom-admin create-staff (packaged ecom-passwd)' or diag $out;
$r = api(POST => '/auth/login/', base => $url,
         body => { email => 'ops@deb.example', password => 'packaged staff pw' });
is $r->{status}, 200, '... and that staff user logs in through the packaged module';
ok $r->{json}{token}, '... with a token';
stop_chroot_httpd();
ok !chroot_pid() || !kill(0, chroot_pid()), 'apache2 stopped';

# ---- purge ----------------------------------------------------------------------
($rc, $out) = inchroot('dpkg', '--purge', 'libapache2-mod-ecom');
is $rc, 0, 'dpkg --purge libapache2-mod-ecom' or diag $out;
($rc, $out) = inchroot('dpkg-query', '-W', '-f=${db:Status-Abbrev}', 'libapache2-mod-ecom');
unlike $out, qr/\A[ir]i/, '... no longer installed';
my @left = grep { (-e "$dir$_" || -l "$dir$_") && !-d "$dir$_" } sort keys %files;
is_deeply \@left, [], '... every file of the package removed';
ok !-e "$dir/usr/share/mod-ecom" && !-e "$dir/usr/libexec/mod-ecom", '... and its directories';
ok !-e "$dir/etc/apache2/mods-enabled/ecom.load" && !-l "$dir/etc/apache2/mods-enabled/ecom.load",
    '... the module disabled';
# the site of this test still uses DBDriver (mod_dbd stays enabled)
($rc, $out) = inchroot('apache2ctl', 'configtest');
is $rc, 0, 'apache2ctl configtest still passes after the purge' or diag $out;

$took{total} = time - $t0;
diag sprintf 'seconds: %s',
    join ', ', map { sprintf '%s %.1f', $_, $took{$_} }
    ('make deb', 'debootstrap', 'apt-get install', 'total');
done_testing;
