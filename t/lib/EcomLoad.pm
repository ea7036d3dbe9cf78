package EcomLoad;
# A small load generator for the fault tests (t/64-restarts.t,
# t/65-pg-restart.t) and `make soak` (scripts/soak.pl): forked Perl workers,
# each one shopper (its own bearer token) going through a mix of requests in
# order, paced to a share of a total rate, every answer recorded.
#
# Every request opens its own connection and says "Connection: close": a
# client that reuses a keep-alive connection races the server closing it
# (an idle keep-alive connection is closed by a graceful restart, as by
# KeepAliveTimeout), and RFC 9112 9.3.1 leaves the retry of such a request to
# the client, which for a POST it must not do blindly. With one connection
# per request, a reset or refused connection is the server's fault, never
# the client's, which is what the restart tests must be able to tell.
#
# Mixes (the steps one worker repeats, in order):
#   shop      GET /products/?limit=20, GET /products/{id}/, POST /cart/,
#             POST /orders/, POST /orders/{id}/payments/ (tok_ok)
#   checkout  POST /cart/, POST /orders/, POST /orders/{id}/payments/
#   browse    GET /products/?limit=20, GET /products/{id}/
# Paying each order keeps the account under EcomMaxPendingOrders; when a
# checkout does not answer 201 the payment step is skipped; when it answers
# 409 too-many-pending-orders (orders whose answer or payment was lost to a
# database restart), the worker reads GET /orders/ (op "orders") and pays
# the first pending one.
#
# load_start(%o) forks the workers and returns at once; load_wait($h)
# returns the records, one hash per answer:
#   {t => start (epoch s), lat => latency (s), status => HTTP status or 0,
#    op => step name, err => '' | refused | reset | eof | timeout | connect,
#    retry_after => header value or undef, problem => 1 if problem+json}
use strict;
use warnings;
use Exporter 'import';
use IO::Socket::INET;
use Errno qw(ECONNREFUSED ECONNRESET EPIPE);
use Time::HiRes qw(time sleep);
use JSON::PP ();
use POSIX ();
use File::Temp ();

our @EXPORT_OK = qw(load_start load_wait load_run summarize percentile);

my $JSON = JSON::PP->new->utf8->canonical;

# request($host, $port, $method, $path, $token, $body, $timeout)
# -> (status, headers hashref, body, err)
sub request {
    my ($host, $port, $method, $path, $token, $body, $timeout) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                  Proto => 'tcp', Timeout => $timeout);
    if (!$s) {
        return (0, {}, '', $! == ECONNREFUSED ? 'refused' : $! == ECONNRESET ? 'reset' : 'connect');
    }
    my $req = "$method $path HTTP/1.1\r\nHost: $host:$port\r\nConnection: close\r\n"
            . "Accept: application/json\r\n";
    $req .= "Authorization: Bearer $token\r\n" if defined $token;
    if (defined $body) {
        $req .= "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n";
    }
    $req .= "\r\n" . ($body // '');
    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite $s, $req, length($req) - $off, $off;
        if (!defined $n) {
            my $e = $! == ECONNRESET || $! == EPIPE ? 'reset' : 'eof';
            close $s;
            return (0, {}, '', $e);
        }
        $off += $n;
    }
    my $buf = '';
    my $deadline = time + $timeout;
    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) { close $s; return (0, {}, '', 'timeout') }
        my $rin = '';
        vec($rin, fileno $s, 1) = 1;
        my $ready = select my $rout = $rin, undef, undef, $left;
        next if $ready < 1;
        my $got = sysread $s, $buf, 65536, length $buf;
        if (!defined $got) {
            close $s;
            return (0, {}, '', $! == ECONNRESET ? 'reset' : 'eof');
        }
        last if $got == 0;
    }
    close $s;
    return (0, {}, '', 'eof') unless $buf =~ m{\AHTTP/1\.[01] (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n(.*)\z}s;
    my ($status, $hdr, $content) = ($1, $2, $3);
    my %h;
    for (split /\r\n/, $hdr) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    if (defined $h{'content-length'} && length($content) < $h{'content-length'}) {
        return ($status, \%h, $content, 'eof');   # a truncated answer
    }
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        my $complete = 0;
        while ($content =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            if ($len == 0) { $complete = 1; last }
            $out .= substr $content, 0, $len, '';
            $content =~ s/\A\r\n//;
        }
        return ($status, \%h, $out, 'eof') unless $complete;
        $content = $out;
    }
    return ($status, \%h, $content, '');
}

my %MIX = (
    shop     => [qw(list detail cart order pay)],
    checkout => [qw(cart order pay)],
    browse   => [qw(list detail)],
);

# One worker: runs until $o->{until} (epoch s), appending one line per
# answer to $file.
sub worker {
    my ($o, $i, $file) = @_;
    my ($host, $port) = $o->{url} =~ m{^http://([^/:]+):(\d+)}
        or die "url must be http://host:port\n";
    my @steps = @{ $MIX{ $o->{mix} } or die "unknown mix $o->{mix}\n" };
    my $token = $o->{tokens}[ $i % @{ $o->{tokens} } ];
    my @products = @{ $o->{products} };
    my $timeout = $o->{timeout} // 30;
    # each worker's share of the rate; 0: as fast as answers come
    my $interval = $o->{rate} ? $o->{workers} / $o->{rate} : 0;
    srand($$ ^ time);
    open my $out, '>', $file or die "$file: $!";
    my $next = time + ($interval ? rand $interval : 0);
    my ($order, $k) = (undef, 0);
    while (time < $o->{until}) {
        if ($interval) {
            my $w = $next - time;
            sleep $w if $w > 0;
            $next += $interval;
            # never more than one interval behind: no catch-up burst
            $next = time if $next < time - $interval;
            last if time >= $o->{until};
        }
        my $op = $steps[ $k++ % @steps ];
        my $pid = $products[ int rand @products ];
        my ($method, $path, $body);
        if ($op eq 'list') { ($method, $path) = (GET => '/products/?limit=20') }
        elsif ($op eq 'detail') { ($method, $path) = (GET => "/products/$pid/") }
        elsif ($op eq 'cart') {
            ($method, $path, $body) = (POST => '/cart/', $JSON->encode({ product_id => $pid + 0, quantity => 1 }));
        }
        elsif ($op eq 'order') { ($method, $path, $body) = (POST => '/orders/', '{}') }
        else {
            next unless defined $order;
            ($method, $path, $body) = (POST => "/orders/$order/payments/", '{"token":"tok_ok"}');
            undef $order;
        }
        my $t0 = time;
        my ($status, $h, $content, $err) = request($host, $port, $method, $path, $token, $body, $timeout);
        my $lat = time - $t0;
        my $problem = ($h->{'content-type'} // '') =~ m{^application/problem\+json}i ? 1 : 0;
        printf $out "%.4f %.5f %d %s %s %s %d\n", $t0, $lat, $status, $op, $err || '-',
            $h->{'retry-after'} // '-', $problem;
        if ($op eq 'order') {
            undef $order;
            if ($status == 201) {
                my $j = eval { $JSON->decode($content) };
                $order = $j->{id} if ref $j eq 'HASH';
            }
            elsif ($status == 409 && $content =~ /too-many-pending-orders/) {
                # orders whose answer was lost (a 503 after a COMMIT that
                # went through, a payment refused by a database restart):
                # find one in GET /orders/ and pay it next, as a shop's
                # client would
                my $t1 = time;
                ($status, $h, $content, $err) = request($host, $port, GET => '/orders/?limit=20',
                                                        $token, undef, $timeout);
                printf $out "%.4f %.5f %d %s %s %s %d\n", $t1, time - $t1, $status, 'orders',
                    $err || '-', $h->{'retry-after'} // '-', 0;
                my $j = $status == 200 ? eval { $JSON->decode($content) } : undef;
                ($order) = map { $_->{id} } grep { ($_->{status} // '') eq 'pending' }
                    @{ ref $j eq 'HASH' && ref $j->{items} eq 'ARRAY' ? $j->{items} : [] };
            }
        }
    }
    close $out;
}

# load_start(url => ECOM_URL, tokens => [...], products => [ids], mix =>
#            'shop' | 'checkout', workers => N, rate => total req/s (0: as
#            fast as possible), duration => s, timeout => s per request)
sub load_start {
    my (%o) = @_;
    $o{workers} //= 4;
    $o{mix} //= 'shop';
    $o{until} = time + $o{duration};
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    my @pids;
    for my $i (0 .. $o{workers} - 1) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            eval { worker(\%o, $i, "$dir/w$i") };
            print STDERR "load worker $i: $@" if $@;
            POSIX::_exit($@ ? 1 : 0);
        }
        push @pids, $pid;
    }
    return { pids => \@pids, dir => $dir, workers => $o{workers}, t0 => time, o => \%o };
}

sub load_wait {
    my ($h) = @_;
    waitpid $_, 0 for @{ $h->{pids} };
    $h->{pids} = [];
    my @rec;
    for my $i (0 .. $h->{workers} - 1) {
        open my $fh, '<', "$h->{dir}/w$i" or next;
        while (<$fh>) {
            chomp;
            my ($t, $lat, $status, $op, $err, $ra, $problem) = split ' ';
            push @rec, { t => $t, lat => $lat, status => $status, op => $op,
                         err => $err eq '-' ? '' : $err,
                         retry_after => $ra eq '-' ? undef : $ra, problem => $problem };
        }
    }
    return [ sort { $a->{t} <=> $b->{t} } @rec ];
}

# Stops the workers of a load that is still running (END blocks, guards).
sub load_kill {
    my ($h) = @_;
    return unless $h && @{ $h->{pids} || [] };
    kill 'TERM', @{ $h->{pids} };
    waitpid $_, 0 for @{ $h->{pids} };
    $h->{pids} = [];
}

sub load_run { load_wait(load_start(@_)) }

sub percentile {
    my ($p, @v) = @_;
    return undef unless @v;
    @v = sort { $a <=> $b } @v;
    my $i = int($p / 100 * @v + 0.5) - 1;
    $i = 0 if $i < 0;
    $i = $#v if $i > $#v;
    return $v[$i];
}

# summarize(\@records) -> {n, rate, by_status => {code => n}, errors => {kind => n}, p50, p99}
sub summarize {
    my ($rec) = @_;
    my (%by, %err);
    for (@$rec) {
        if ($_->{err}) { $err{ $_->{err} }++ }
        $by{ $_->{status} }++;
    }
    my $span = @$rec > 1 ? ($rec->[-1]{t} + $rec->[-1]{lat} - $rec->[0]{t}) : 1;
    my @lat = map { $_->{lat} } grep { !$_->{err} } @$rec;
    return { n => scalar @$rec, rate => @$rec / ($span || 1), by_status => \%by, errors => \%err,
             p50 => percentile(50, @lat), p99 => percentile(99, @lat) };
}

sub fmt_counts {
    my ($h) = @_;
    return join ' ', map { "$_:$h->{$_}" } sort keys %$h;
}

push @EXPORT_OK, qw(load_kill fmt_counts request);

1;
