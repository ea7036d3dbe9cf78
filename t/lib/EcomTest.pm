package EcomTest;
# Helpers for mod_ecom's end-to-end tests: a real httpd with the module and a
# real PostgreSQL, started by scripts/test.sh (see docs/API.md for the contract).
use strict;
use warnings;
use Exporter 'import';
use HTTP::Tiny;
use JSON::PP ();
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Test::More ();
use POSIX ();

our @EXPORT = qw(api raw_request register_user login staff_token create_product
                 psql_value psql_do is_problem has_field_error uniq json_encode
                 json_decode is_rfc3339 is_true is_false is_int base_url
                 error_log_text error_log_size slurp_file content_type is_json_ct
                 bearer_challenge_ok ecom_root parallel spare_httpd free_port
                 server_status module_directives pending_order
                 kill_mid_request retry_until_final set_cookies paid_buyer
                 scratch_database plan_work nested_plans);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
our $PASSWORD = 'correct horse battery';
our $TIMEOUT  = 30;

sub base_url { $ENV{ECOM_URL} }
sub ecom_root {
    return $ENV{ECOM_ROOT} if defined $ENV{ECOM_ROOT};
    require File::Basename; require File::Spec;
    return File::Spec->rel2abs(File::Basename::dirname(__FILE__) . '/../..');
}

sub json_encode { $JSON->encode($_[0]) }
sub json_decode { my $v = eval { $JSON->decode($_[0]) }; $v }

my $counter = 0;
# Unique per process, per call and per run: safe for parallel and repeated runs.
sub uniq {
    $counter++;
    my $t = sprintf '%.0f', time * 1000;
    return sprintf '%d-%s-%d-%04d', $$, $t, $counter, int rand 10000;
}

sub content_type {
    my ($res) = @_;
    my $ct = $res->{headers}{'content-type'} // '';
    $ct = $ct->[0] if ref $ct;
    return $ct;
}

sub is_json_ct { content_type($_[0]) =~ m{^application/(?:problem\+)?json\b}i }

# api($method, $path, body => $hashref_or_raw, token => $t, headers => {...},
#     base => $url, content_type => $ct_or_undef, timeout => $s)
# Returns {status, reason, headers (lower-case keys), content, json}.
sub api {
    my ($method, $path, %o) = @_;
    my $base = $o{base} // base_url() // die "ECOM_URL is not set\n";
    my %h;
    while (my ($k, $v) = each %{ $o{headers} || {} }) { $h{lc $k} = $v }
    my %args;
    if (exists $o{body}) {
        my $b = $o{body};
        $args{content} = (ref $b && ref $b ne 'CODE') ? $JSON->encode($b) : $b;
        $h{'content-type'} = 'application/json' unless exists $h{'content-type'};
    }
    if (exists $o{content_type}) {
        if (defined $o{content_type}) { $h{'content-type'} = $o{content_type} }
        else { delete $h{'content-type'} }
    }
    $h{authorization} = "Bearer $o{token}" if defined $o{token};
    $args{headers} = \%h;
    my $ua = HTTP::Tiny->new(
        keep_alive => 0,
        timeout    => $o{timeout} // $TIMEOUT,
        verify_SSL => 0,
        SSL_options => { SSL_verify_mode => 0 },
        max_redirect => 0,
    );
    my $res = $ua->request($method, $base . $path, \%args);
    my %r = (
        status  => $res->{status},
        reason  => $res->{reason},
        headers => $res->{headers} || {},
        content => $res->{content} // '',
    );
    $r{json} = json_decode($r{content})
        if length $r{content} && is_json_ct(\%r);
    return \%r;
}

# A request written byte for byte on a fresh socket (for what HTTP::Tiny will
# not send: no Content-Type, odd bytes, lying Content-Length...). $req is
# the full request text; "Connection: close" is expected in it.
sub raw_request {
    my ($req, %o) = @_;
    my ($host, $port) = (base_url() // '') =~ m{^http://([^/:]+):(\d+)}
        or die "ECOM_URL must be http://host:port\n";
    my $timeout = $o{timeout} // $TIMEOUT;
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                  Proto => 'tcp', Timeout => $timeout)
        or return { status => 599, content => "connect: $!", headers => {} };
    binmode $s;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite $s, $req, 65536, $off;
        last unless defined $n && $n > 0;   # server may answer early and close
        $off += $n;
    }
    shutdown $s, 1 if $o{half_close};
    my $buf = '';
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $rin = '';
        vec($rin, fileno $s, 1) = 1;
        my $left = $deadline - time;
        last if $left <= 0;
        my $n = select my $rout = $rin, undef, undef, $left;
        last unless $n;
        my $got = sysread $s, $buf, 65536, length $buf;
        last unless $got;
        last if $o{first_response_only} && _complete($buf);
    }
    close $s;
    return { status => 599, content => "timeout/no answer", headers => {}, raw => $buf }
        unless $buf =~ m{\AHTTP/\d\.\d (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n(.*)\z}s;
    my ($status, $hdr, $body) = ($1, $2, $3);
    my %h;
    for (split /\r\n/, $hdr) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        if (exists $h{$k}) { $h{$k} = [ ref $h{$k} ? @{ $h{$k} } : $h{$k}, $v ] }
        else { $h{$k} = $v }
    }
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr $body, 0, $len, '';
            $body =~ s/\A\r\n//;
        }
        $body = $out;
    }
    my %r = (status => $status, headers => \%h, content => $body, raw => $buf);
    $r{json} = json_decode($body) if length $body && is_json_ct(\%r);
    return \%r;
}

sub _complete {
    my ($buf) = @_;
    return 0 unless $buf =~ /\r\n\r\n/;
    my ($hdr, $body) = split /\r\n\r\n/, $buf, 2;
    return 1 if $hdr =~ /^content-length:\s*(\d+)/mi && length($body) >= $1;
    return 1 if $hdr =~ /^transfer-encoding:\s*chunked/mi && $body =~ /(?:^|\r\n)0\r\n\r\n\z/;
    return 0;
}

# parallel($n, $sync, $code): runs $code->($i) in $n forked children and
# returns their results (decoded JSON) in order. With $sync, every child
# waits for a common start time (a number: that many seconds from now).
sub parallel {
    require File::Temp;
    my ($n, $sync, $code) = @_;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my $start = time + ($sync && $sync > 1 ? $sync - 1 : 0) + ($ENV{ECOM_SANITIZED} ? 3 : 1.5);
    my @pids;
    for my $i (0 .. $n - 1) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            my $out = eval {
                if ($sync) { my $w = $start - time; sleep $w if $w > 0 }
                json_encode($code->($i));
            } // json_encode({ error => "$@" });
            if (open my $fh, '>', "$dir/$i") { print $fh $out; close $fh }
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my @res;
    for my $i (0 .. $n - 1) {
        open my $fh, '<', "$dir/$i" or do { push @res, { error => "child $i wrote nothing" }; next };
        local $/;
        push @res, json_decode(<$fh>) // { error => "child $i: bad output" };
    }
    return @res;
}

sub register_user {
    my (%o) = @_;
    my $email = $o{email} // ('user-' . uniq() . '@example.com');
    my $password = $o{password} // $PASSWORD;
    my $res = api(POST => '/auth/register/', body => {
        email => $email, password => $password, name => $o{name} // 'Test User' });
    die "register $email failed: $res->{status} $res->{content}\n"
        unless $res->{status} == 201 && ref $res->{json} eq 'HASH'
            && defined $res->{json}{token};
    return { email => $email, password => $password, token => $res->{json}{token},
             user => $res->{json}{user}, id => $res->{json}{user}{id}, res => $res };
}

# paid_buyer(@products): a new customer (register_user) with one paid order
# holding one of each product (objects with an id), placed through the API
# (cart, checkout, sandbox payment): history for the recommendations.
sub paid_buyer {
    my (@ps) = @_;
    my $u = register_user(name => 'Rec Buyer');
    for my $p (@ps) {
        my $r = api(POST => '/cart/', token => $u->{token}, body => { product_id => $p->{id}, quantity => 1 });
        die "buyer: cart: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    }
    my $r = api(POST => '/orders/', token => $u->{token});
    die "buyer: checkout: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    $r = api(POST => "/orders/$r->{json}{id}/payments/", token => $u->{token}, body => { token => 'tok_ok' });
    die "buyer: pay: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return $u;
}

# The Set-Cookie headers of an answer as
# { name => { value, attrs => { lower-case name => value }, line } }.
sub set_cookies {
    my ($res) = @_;
    my $h = $res->{headers}{'set-cookie'} // [];
    my %c;
    for my $line (ref $h ? @$h : $h) {
        my ($pair, @attrs) = split /\s*;\s*/, $line;
        my ($name, $value) = $pair =~ /^([^=]+)=(.*)$/ or next;
        my %a;
        for (@attrs) { my ($k, $v) = /^([^=]+)(?:=(.*))?$/ or next; $a{lc $k} = $v // 1 }
        $c{$name} = { value => $value, attrs => \%a, line => $line };
    }
    return \%c;
}

# login($email, $password, base => $url)
sub login {
    my ($email, $password, %o) = @_;
    my $res = api(POST => '/auth/login/', base => $o{base},
                  body => { email => $email, password => $password });
    die "login $email failed: $res->{status} $res->{content}\n"
        unless $res->{status} == 200 && ref $res->{json} eq 'HASH';
    return $res->{json}{token};
}

my %staff;   # base URL -> [token, user id]
# A staff user made with scripts/ecom-admin, logged in through the API.
# In list context: (token, user id). For another shop (a virtual host on its
# own database): staff_token(base => $url, db => $database).
sub staff_token {
    my (%o) = @_;
    my $base = $o{base} // base_url();
    unless ($staff{$base}) {
        my $email = 'staff-' . uniq() . '@example.com';
        my $pw = 'staff password ' . uniq();
        local %ENV = %ENV;
        $ENV{ECOM_PASSWORD} = $pw;
        $ENV{PGDATABASE} = $o{db} if defined $o{db};
        my $admin = ecom_root() . '/scripts/ecom-admin';
        my $pid = open my $fh, '-|';
        die "cannot fork for ecom-admin: $!\n" unless defined $pid;
        if (!$pid) {
            open STDERR, '>&', \*STDOUT;
            { exec 'bash', $admin, 'create-staff', '--email', $email }
            POSIX::_exit(127);
        }
        my $out = do { local $/; <$fh> } // '';
        close $fh or die "ecom-admin create-staff failed (exit $?): $out\n";
        my ($id) = $out =~ /^(\d+)\s*$/m;
        $staff{$base} = [ login($email, $pw, base => $base), $id ];
    }
    return wantarray ? @{ $staff{$base} } : $staff{$base}[0];
}

# Creates a product through the staff API; returns the product object.
# _base => $url, _db => $database: in another shop (see staff_token).
sub create_product {
    my (%f) = @_;
    my $u = uniq();
    my %body = (name => "Test product $u", price => 1000, stock => 10,
                sku => "t-$u", description => "made by the e2e tests", %f);
    delete @body{ @{ delete $body{_omit} } } if $body{_omit};
    my ($base, $db) = delete @body{qw(_base _db)};
    my $res = api(POST => '/products/', body => \%body, base => $base,
                  token => scalar staff_token(base => $base, db => $db));
    die "create_product failed: $res->{status} $res->{content}\n"
        unless $res->{status} == 201 && ref $res->{json} eq 'HASH';
    return $res->{json};
}

# A pending order of user $u (from register_user) for qty (1) units of a
# new product at price (500): cart, then checkout. Returns the order.
# kill_mid_request(lock => $sql, request => sub {...})
# An outside psql session runs "BEGIN; $sql; pg_sleep(1.5); COMMIT" (a
# SELECT ... FOR UPDATE of a row the request needs), the request runs in a
# forked client and waits for that row inside its transaction, and then
# every httpd child is SIGKILLed. $o{while_waiting}, if given, is called
# just before the kill (to check the request really waits). Returns how
# many children were killed.
sub kill_mid_request {
    my (%o) = @_;
    my $holder = fork // die "fork: $!";
    if (!$holder) {
        { exec 'psql', '-XAtq', '-c', "BEGIN; $o{lock}; SELECT pg_sleep(1.5); COMMIT;" }
        POSIX::_exit(127);
    }
    sleep 0.3;
    my $client = fork // die "fork: $!";
    if (!$client) {
        eval { $o{request}->() };
        POSIX::_exit(0);
    }
    sleep 0.6;
    $o{while_waiting}->() if $o{while_waiting};
    my $rundir = $ENV{ECOM_RUNDIR} // die "ECOM_RUNDIR is not set\n";
    open my $fh, '<', "$rundir/httpd.pid" or die "httpd.pid: $!";
    chomp(my $ppid = <$fh>);
    my $killed = kill 'KILL', grep { /^\d+$/ } split ' ', `ps -o pid= --ppid $ppid`;
    waitpid $client, 0;
    waitpid $holder, 0;
    return $killed;
}

# retry_until_final(sub { api(...) }): what a client with an
# Idempotency-Key does after a lost answer: retries while the answer is
# 409 (in flight), 503 or 599 (no connection), for at most 40 s. Returns
# (the last answer, the number of tries).
sub retry_until_final {
    my ($request) = @_;
    my ($r, $tries, $deadline) = (undef, 0, time + 40);
    while (time < $deadline) {
        $tries++;
        $r = $request->();
        last unless $r->{status} == 409 || $r->{status} == 503 || $r->{status} == 599;
        sleep 0.5;
    }
    return ($r, $tries);
}

sub pending_order {
    my ($u, %o) = @_;
    my $p = create_product(price => $o{price} // 500, stock => 100);
    my $r = api(POST => '/cart/', token => $u->{token},
                body => { product_id => $p->{id}, quantity => $o{qty} // 1 });
    die "pending_order: cart: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    $r = api(POST => '/orders/', token => $u->{token});
    die "pending_order: checkout: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    return $r->{json};
}

# psql with the test environment (PGHOST, PGPORT, PGUSER, PGDATABASE).
# Only for SQL built from constants and ids the test generated itself.
sub psql_value {
    my ($sql) = @_;
    open my $fh, '-|', 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', $sql
        or die "cannot run psql: $!\n";
    my $out = do { local $/; <$fh> };
    close $fh or die "psql failed (exit $?) for: $sql\n";
    $out //= '';
    chomp $out;
    return $out;
}
sub psql_do { psql_value(@_) }

# scratch_database(NAME): a database of its own on the test cluster,
# created afresh (as postgres, owned by PGUSER), migrated (scripts/migrate.sh:
# one test assertion) and dropped when the test ends. Returns a function
# that runs SQL there and returns its output, as psql_value does.
my @scratch;
sub scratch_database {
    my ($name) = @_;
    _as_postgres("DROP DATABASE IF EXISTS $name");
    _as_postgres("CREATE DATABASE $name OWNER " . ($ENV{PGUSER} // 'ecom'));
    push @scratch, $name;
    {
        local $ENV{PGDATABASE} = $name;
        my $out = `bash @{[ ecom_root() ]}/scripts/migrate.sh 2>&1`;
        Test::More::is($?, 0, "the migrations apply to the scratch database $name") or Test::More::diag($out);
    }
    return sub {
        local $ENV{PGDATABASE} = $name;
        return psql_value(@_);
    };
}
sub _as_postgres {
    my ($sql) = @_;
    system('psql', '-XAtq', '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', $sql) == 0
        or die "psql as postgres failed: $sql\n";
}
END { eval { _as_postgres("DROP DATABASE IF EXISTS $_") } for @scratch }

# plan_work(PLAN [, W]): what an EXPLAIN (ANALYZE, FORMAT JSON) plan node and
# its children did, added into W (a new one without): read, the rows the
# scans of tables returned or removed (loops counted; not the bitmap index
# scans, whose rows the heap scan reads again; only the scans of the table
# W's relation names, when it names one), sorted, the input of the largest
# sort, and scans, "<node type> <index or table>" of each scan.
sub plan_work {
    my ($node, $w) = @_;
    $w //= { read => 0, sorted => 0, scans => [] };
    my $loops = $node->{'Actual Loops'} // 1;
    push @{ $w->{scans} }, "$node->{'Node Type'} " . ($node->{'Index Name'} // $node->{'Relation Name'} // '')
        if $node->{'Node Type'} =~ /Scan/;
    if ($node->{'Node Type'} =~ /Scan/ && $node->{'Node Type'} ne 'Bitmap Index Scan'
        && (!defined $w->{relation} || ($node->{'Relation Name'} // '') eq $w->{relation})) {
        $w->{read} += $loops * (($node->{'Actual Rows'} // 0) + ($node->{'Rows Removed by Filter'} // 0)
                                + ($node->{'Rows Removed by Index Recheck'} // 0));
    }
    if ($node->{'Node Type'} eq 'Sort') {
        my $in = $node->{Plans}[0]{'Actual Rows'} // 0;
        $w->{sorted} = $in if $in > $w->{sorted};
    }
    plan_work($_, $w) for @{ $node->{Plans} // [] };
    return $w;
}

# nested_plans(DB, SQL): the plans (EXPLAIN ANALYZE, FORMAT JSON) of the
# statements that the functions SQL calls run, as auto_explain logs them
# (LOAD needs the superuser: run as postgres on database DB); SQL's own plan
# is left out.
sub nested_plans {
    my ($db, $sql) = @_;
    my $script = "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; "
        . 'SET auto_explain.log_nested_statements = on; SET auto_explain.log_analyze = on; '
        . "SET auto_explain.log_format = json; SET auto_explain.log_level = notice; $sql";
    # the NOTICEs come on stderr
    open my $ph, '-|', "psql -XAtq -U postgres -d $db -v ON_ERROR_STOP=1 -c \Q$script\E 2>&1"
        or die "cannot run psql: $!\n";
    my $out = do { local $/; <$ph> } // '';
    close $ph;
    my @plans;
    for my $chunk (split /NOTICE:\s+duration: [\d.]+ ms\s+plan:\s*\n/, $out) {
        my ($json) = $chunk =~ /\A(\{.*?\n\})/s or next;
        my $p = eval { JSON::PP->new->decode($json) } or next;
        push @plans, $p if index($p->{'Query Text'} // '', $sql) < 0;
    }
    return @plans;
}

sub is_int  { defined $_[0] && !ref $_[0] && $_[0] =~ /\A-?\d+\z/ && !JSON::PP::is_bool($_[0]) }
sub is_true  { JSON::PP::is_bool($_[0]) && $_[0] }
sub is_false { JSON::PP::is_bool($_[0]) && !$_[0] }
sub is_rfc3339 {
    defined $_[0] && !ref $_[0]
        && $_[0] =~ /\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]00:00)\z/;
}

# is_problem($res, $status, $slug?, $name?): status, problem+json, fields.
sub is_problem {
    my ($res, $status, $slug, $name) = @_;
    $name //= "problem $status" . (defined $slug ? " $slug" : '');
    my @why;
    push @why, "status is $res->{status}, want $status" unless $res->{status} == $status;
    my $ct = content_type($res);
    push @why, "content-type is '$ct', want application/problem+json"
        unless $ct =~ m{^application/problem\+json\s*(?:;|\z)}i;
    my $j = $res->{json};
    if (ref $j ne 'HASH') {
        push @why, 'body is not a JSON object';
    } else {
        my $want = defined $slug ? qr/\Aurn:mod-ecom:problem:\Q$slug\E\z/
                                 : qr/\Aurn:mod-ecom:problem:[a-z-]+\z/;
        push @why, "type is '" . ($j->{type} // 'undef') . "'"
            unless defined $j->{type} && $j->{type} =~ $want;
        push @why, 'title missing' unless defined $j->{title} && !ref $j->{title} && length $j->{title};
        push @why, 'detail missing' unless defined $j->{detail} && !ref $j->{detail};
        push @why, 'status field ' . ($j->{status} // 'undef') . " != $res->{status}"
            unless is_int($j->{status}) && $j->{status} == $res->{status};
    }
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = $tb->ok(!@why, $name);
    $tb->diag(join("\n", @why) . "\nbody: " . substr($res->{content} // '', 0, 500)) unless $ok;
    return $ok;
}

# has_field_error($res, $field, $name?): errors[] names the field.
sub has_field_error {
    my ($res, $field, $name) = @_;
    my $errs = ref $res->{json} eq 'HASH' ? $res->{json}{errors} : undef;
    my $ok = ref $errs eq 'ARRAY'
        && grep { ref $_ eq 'HASH' && defined $_->{field} && $_->{field} eq $field
                  && defined $_->{message} && length $_->{message} } @$errs;
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $tb->ok($ok, $name // "errors[] names field '$field'");
    $tb->diag('body: ' . substr($res->{content} // '', 0, 500)) unless $ok;
    return $ok;
}

# WWW-Authenticate: Bearer [...]
sub bearer_challenge_ok {
    my ($res, $want_invalid_token) = @_;
    my $h = $res->{headers}{'www-authenticate'} // '';
    $h = join ', ', @$h if ref $h;
    return 0 unless $h =~ /\bBearer\b/;
    return 0 if $want_invalid_token && $h !~ /error="invalid_token"/;
    return 1;
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
                                  Listen => 1, ReuseAddr => 1) or die "no free port: $!\n";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# spare_httpd(%o): a throwaway apache2 with mod_ecom, for what the suite's
# own server cannot show (another configuration, a process to watch).
#   conf   => the configuration after a common prelude (ServerRoot, pid file,
#             logs, one small event-MPM child, mod_authz_core, mod_ecom);
#             @DIR@ is its directory, @PORT0@, @PORT1@... free ports
#             (each one also gets a Listen line)
#   ports  => how many ports (1)
#   fixed_ports => [port, ...] to use instead of free ones
#   modules => [names] more modules from /usr/lib/apache2/modules (mod_NAME.so)
#   start  => 0: only write the config and run apache2 -t
# Returns { dir, conf, ports, syntax (apache2 -t output), syntax_ok, started,
#           error_log (path), pid (parent), stop => sub }; or a string why it
# cannot run (not root, no apache2). Uses the module and preload of the test
# pass (MODULE, ECOM_PRELOAD), so it runs under the sanitizers in pass 2.
my @spares;
END { for my $h (@spares) { $h->{stop}->() if $h->{owner} == $$ } }

sub spare_httpd {
    my (%o) = @_;
    my $apache2 = '/usr/sbin/apache2';
    return 'apache2 not found' unless -x $apache2;
    return 'needs root (User www-data)' if $> != 0;
    require File::Temp;
    my $dir = File::Temp::tempdir('ecom-spare-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $dir;
    my $module = $ENV{MODULE} // ecom_root() . '/build/mod_ecom.so';
    # fixed_ports => [...]: these (a test's HTTP_PORT + 100.. range) instead
    my @ports = $o{fixed_ports} ? @{ $o{fixed_ports} }
                                : map { free_port() } 1 .. ($o{ports} // 1);
    my @mods = (qw(mpm_event authz_core), @{ $o{modules} || [] }, 'dbd');
    my %seen;
    my $conf = join('', map { "$_\n" } (
        'ServerRoot "/etc/apache2"', 'PidFile "@DIR@/httpd.pid"', 'DefaultRuntimeDir "@DIR@"',
        'Mutex "file:@DIR@" default', 'ServerName 127.0.0.1', 'User www-data', 'Group www-data',
        'ErrorLog "@DIR@/error.log"', 'LogLevel info',
        'StartServers 1', 'ServerLimit 1', 'ThreadsPerChild 4', 'MaxRequestWorkers 4',
        'MinSpareThreads 1', 'MaxSpareThreads 4',
        (map { "LoadModule ${_}_module /usr/lib/apache2/modules/mod_$_.so" } grep { !$seen{$_}++ } @mods),
        "LoadModule ecom_module \"$module\"",
        (map { "Listen 127.0.0.1:\@PORT$_\@" } 0 .. $#ports),
    )) . ($o{conf} // '');
    $conf =~ s/\@DIR\@/$dir/g;
    $conf =~ s/\@PORT(\d+)\@/$ports[$1] \/\/ die "no port $1\n"/ge;
    my $file = "$dir/httpd.conf";
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $conf;
    close $fh;
    my @env = length($ENV{ECOM_PRELOAD} // '') ? ('env', "LD_PRELOAD=$ENV{ECOM_PRELOAD}") : ();
    my $syntax = `@env $apache2 -t -f $file 2>&1`;
    my %h = (dir => $dir, conf => $file, ports => \@ports, syntax => $syntax,
             syntax_ok => ($? == 0 && $syntax =~ /Syntax OK/) ? 1 : 0,
             error_log => "$dir/error.log", started => 0);
    $h{stop} = sub {
        return unless $h{pid};
        kill 'TERM', $h{pid};
        my $t = time + 20;
        sleep 0.1 while kill(0, $h{pid}) && time < $t;
        delete $h{pid};
    };
    return \%h if defined $o{start} && !$o{start} || !$h{syntax_ok};
    $h{owner} = $$;
    push @spares, \%h;
    my $out = `@env $apache2 -f $file -k start 2>&1`;
    $h{start_output} = $out;
    return \%h if $? != 0;
    my $deadline = time + 30;
    until ($h{started}) {
        last if time > $deadline;
        if (open my $pf, '<', "$dir/httpd.pid") {
            my $pid = <$pf>;
            $h{pid} = $1 if defined $pid && $pid =~ /^(\d+)/;
        }
        $h{started} = 1 if $h{pid}
            && IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ports[0], Proto => 'tcp', Timeout => 1);
        sleep 0.1 unless $h{started};
    }
    return \%h;
}

# server_status(base => $url): mod_status's ?auto report (the test server
# has it at /server-status) as a hashref. Lines before the first heading
# line (a line without ": ", such as "EcomCacheStatus") are stored under
# their own names; the lines after a heading under "Heading/Name", since
# several sections use the same names (CacheType, CacheCurrentEntries...).
# undef when the report cannot be had.
sub server_status {
    my (%o) = @_;
    my $r = api(GET => '/server-status?auto', base => $o{base});
    return undef unless $r->{status} == 200;
    my (%s, $section);
    for my $line (split /\n/, $r->{content}) {
        if ($line =~ /^([^:]+): ?(.*)$/) {
            $s{defined $section ? "$section/$1" : $1} = $2;
        } elsif ($line =~ /^(\S+)$/) {
            $section = $1;
        }
    }
    return \%s;
}

# module_directives(): mod_ecom's directives as `apache2 -L` lists them with
# the module of the test pass loaded (MODULE, else build/mod_ecom.so).
# Returns { name => { help, allowed (the "Allowed in" text), context,
# default, min, max } } or a string why it cannot. context is written as
# README.md's table writes it: "server, virtual host, directory" (anywhere in
# *.conf), "server, virtual host" (outside sections), "server config" (the
# help says "main server only"), plus ", .htaccess" when allowed there.
# default, min and max come from the help's closing "(min..max, default n)"
# or "(default: text)"; min and max are undef for non-integer directives.
sub module_directives {
    my $apache2 = '/usr/sbin/apache2';
    return 'apache2 not found' unless -x $apache2;
    my $module = $ENV{MODULE} // ecom_root() . '/build/mod_ecom.so';
    return "no module at $module (make)" unless -e $module;
    require File::Temp;
    my $dir = File::Temp::tempdir('ecom-L-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    open my $fh, '>', "$dir/httpd.conf" or die "$dir/httpd.conf: $!\n";
    print $fh map { "$_\n" } 'ServerRoot "/etc/apache2"', "PidFile \"$dir/httpd.pid\"",
        "ErrorLog \"$dir/error.log\"",
        'LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so',
        'LoadModule dbd_module /usr/lib/apache2/modules/mod_dbd.so',
        "LoadModule ecom_module \"$module\"";
    close $fh;
    my @env = length($ENV{ECOM_PRELOAD} // '') ? ('env', "LD_PRELOAD=$ENV{ECOM_PRELOAD}") : ();
    my $out = `@env $apache2 -f $dir/httpd.conf -L 2>&1`;
    return "apache2 -L failed (exit $?): $out" if $?;
    my %d;
    while ($out =~ /^(\w+) \(mod_ecom\.c\)\n\t([^\n]*)\n\t(Allowed in [^\n]*)(\n\twhen AllowOverride[^\n]*)?/mg) {
        my ($name, $help, $allowed, $htaccess) = ($1, $2, $3, $4);
        my %e = (help => $help, allowed => $allowed);
        if ($help =~ /\((?:(-?\d+)\.\.(-?\d+), )?default:? ([^()]*)\)\s*\z/) {
            @e{qw(min max default)} = ($1, $2, $3);
        }
        $e{context} = $allowed =~ /anywhere/ ? 'server, virtual host, directory'
                    : $help =~ /main server only/ ? 'server config'
                    : 'server, virtual host';
        $e{context} .= ', .htaccess' if $allowed =~ /htaccess/ || $htaccess;
        $d{$name} = \%e;
    }
    return "apache2 -L lists no mod_ecom directive: $out" unless %d;
    return \%d;
}

# slurp_file(PATH [, FROM]): the file's bytes from offset FROM (default 0),
# '' when there are none, undef when it cannot be read (missing)
sub slurp_file {
    my ($path, $from) = @_;
    open my $fh, '<:raw', $path or return undef;
    seek $fh, $from // 0, 0;
    local $/;
    my $t = <$fh>;
    return $t // '';
}

sub error_log_path { defined $ENV{ECOM_RUNDIR} ? "$ENV{ECOM_RUNDIR}/error.log" : undef }
sub error_log_size { my $p = error_log_path() // return 0; -s $p // 0 }
# the suite's error.log from offset FROM (a spare server's: slurp_file)
sub error_log_text {
    my ($from) = @_;
    my $p = error_log_path() // return undef;
    return slurp_file($p, $from);
}

1;
