#!/usr/bin/perl
# Broken configurations refuse to start, each with a message naming the
# directive; a good one starts and requests see its values as resolved at
# merge time. Throwaway apache2 servers (spare_httpd): `apache2 -t` for what
# the directives check as httpd reads them (ranges, contexts, a section's
# own relations, the webhook secret), and both for what ecom_config_check
# refuses after configuration (ECOM05xx; check_config, so configtest too). The directives, their
# ranges and contexts come from `apache2 -L` (module_directives), which
# t/21-directives.t holds equal to README.md's table.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use EcomTest;

plan skip_all => 'ECOM_URL not set (run through scripts/test.sh)' unless $ENV{ECOM_URL};
my $dirs = module_directives();
plan skip_all => "cannot list the module's directives: $dirs" unless ref $dirs;
my $probe = spare_httpd(start => 0, conf => '');
plan skip_all => "cannot run a spare apache2: $probe" unless ref $probe;

my $pgport = $ENV{PGPORT} // 55432;
my $dbd = <<"CONF";
DBDriver pgsql
DBDParams "host=127.0.0.1 port=$pgport dbname=ecom user=ecom connect_timeout=2"
DBDMin 0
CONF

my @ints = grep { defined $dirs->{$_}{min} } sort keys %$dirs;
cmp_ok scalar @ints, '>=', 9, 'apache2 -L lists the integer directives with their ranges (' . join(' ', @ints) . ')';

# A directive line where it belongs: in a <Location> when it may be used
# there (the per-directory ones), else at the server's top level.
sub placed {
    my ($name, $value) = @_;
    return "$name $value\n" unless $dirs->{$name}{context} =~ /directory/;
    return "<Location \"/\">\n    SetHandler ecom\n    $name $value\n</Location>\n";
}

# apache2 -t refuses $conf with a message matching $re
sub refused_by_syntax {
    my ($conf, $re, $name) = @_;
    my $t = spare_httpd(start => 0, conf => $conf);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok !$t->{syntax_ok}, "apache2 -t refuses $name"
        or diag "config:\n$conf\noutput: $t->{syntax}";
    like $t->{syntax}, $re, '  with a message naming the directive';
    return $t;
}

# apache2 -t accepts $conf
sub accepted_by_syntax {
    my ($conf, $name) = @_;
    my $t = spare_httpd(start => 0, conf => $conf);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok $t->{syntax_ok}, "apache2 -t accepts $name" or diag "config:\n$conf\noutput: $t->{syntax}";
    return $t;
}

# httpd does not start with $conf, nor does apache2 -t pass it (the check
# runs after configuration, in check_config, before "Syntax OK"), and says
# why, matching $re
sub refused_at_start {
    my ($conf, $re, $name, %o) = @_;
    my $t = spare_httpd(conf => $dbd . $conf, %o);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok !$t->{syntax_ok}, "apache2 -t refuses $name (configtest sees the relation check)";
    like $t->{syntax} // '', $re, '  naming the directives';
    ok !$t->{started}, "httpd refuses to start with $name";
    my $log = slurp_file($t->{error_log}) // '';
    $t->{stop}->();
    return ($t->{syntax} // '') . $log;
}

# --- every integer directive: below its minimum, above its maximum, not a number ---
for my $name (@ints) {
    my ($min, $max) = @{ $dirs->{$name} }{qw(min max)};
    my $re = qr/\Q$name\E must be an integer from \Q$min\E to \Q$max\E/;
    for my $v ($min - 1, $max + 1, 'ten', '1.5', '12abc') {
        refused_by_syntax(placed($name, $v), $re, "$name $v");
    }
}

# --- and each at its minimum, and at its maximum ---------------------------
# (EcomWebhookTolerance needs a secret: see the relations below)
for my $end (qw(min max)) {
    my $conf = join '', "EcomWebhookSecret " . ('s' x 32) . "\n",
                        map { placed($_, $dirs->{$_}{$end}) } @ints;
    accepted_by_syntax($conf, "every integer directive at its $end");
}

# --- where a directive may not be used ---------------------------------------
my %sample = (EcomCache => 'none', EcomWebhookSecret => 'w' x 40, EcomCurrency => 'EUR',
              EcomBasePath => '/api');
sub sample { $sample{ $_[0] } // $dirs->{ $_[0] }{default} }
for my $name (sort keys %$dirs) {
    next if $dirs->{$name}{context} =~ /directory/;
    refused_by_syntax("<Location \"/x/\">\n    $name " . sample($name) . "\n</Location>\n",
                      qr/\Q$name\E not allowed/, "$name in a <Location>");
    next unless $dirs->{$name}{context} eq 'server config';
    refused_by_syntax("<VirtualHost 127.0.0.1:\@PORT0\@>\n    $name " . sample($name) . "\n</VirtualHost>\n",
                      qr/\Q$name\E cannot occur within <VirtualHost>/, "$name in a <VirtualHost>");
}

# --- the other directives' values --------------------------------------------
refused_by_syntax(placed(EcomCurrency => 'eur'), qr/EcomCurrency must be an ISO 4217 code/, 'EcomCurrency eur');
refused_by_syntax(placed(EcomBasePath => 'api'), qr/EcomBasePath must be an absolute URL path/, 'EcomBasePath api');
refused_by_syntax("EcomCache nosuchprovider:x\n", qr/EcomCache: unknown socache provider/, 'an unknown EcomCache provider');

# --- relations within one section: refused whatever the order ----------------
for my $body ("EcomPageSize 50\n    EcomPageSizeMax 30", "EcomPageSizeMax 30\n    EcomPageSize 50") {
    (my $show = $body) =~ s/\s+/ /g;
    refused_by_syntax("<Location \"/\">\n    SetHandler ecom\n    $body\n</Location>\n",
                      qr/EcomPageSize \(50\) may not exceed EcomPageSizeMax \(30\)/, "'$show' in one <Location>");
    refused_by_syntax("$body\n", qr/EcomPageSize \(50\) may not exceed EcomPageSizeMax \(30\)/,
                      "'$show' at the server's top level");
}
refused_by_syntax("EcomMaxAnonBodySize 8192\nEcomMaxBodySize 4096\n",
                  qr/EcomMaxAnonBodySize \(8192\) may not exceed EcomMaxBodySize \(4096\)/,
                  "'EcomMaxAnonBodySize 8192 EcomMaxBodySize 4096' at the server's top level");
# in different sections the cap applies (checked on a running server below)
accepted_by_syntax("EcomPageSize 50\n<Location \"/\">\n    SetHandler ecom\n    EcomPageSizeMax 30\n</Location>\n",
                   'EcomPageSize 50 for the server and EcomPageSizeMax 30 in a <Location>');

# --- EcomWebhookSecret --------------------------------------------------------
my $sdir = File::Temp::tempdir(CLEANUP => 1);
sub secret_file {
    my ($name, $content) = @_;
    open my $fh, '>', "$sdir/$name" or die "$sdir/$name: $!\n";
    binmode $fh;
    print $fh $content;
    close $fh;
    return "$sdir/$name";
}
my $short = 's' x 31;
my $t = refused_by_syntax("EcomWebhookSecret $short\n",
                          qr/EcomWebhookSecret must be at least 32 bytes \(this one has 31\)/,
                          'a 31-byte EcomWebhookSecret');
unlike $t->{syntax}, qr/\Q$short\E/, '  without showing the secret';
refused_by_syntax("EcomWebhookSecret file:$sdir/nope\n",
                  qr/EcomWebhookSecret: cannot read \Q$sdir\E\/nope/, 'EcomWebhookSecret naming a missing file');
refused_by_syntax("EcomWebhookSecret file:\n", qr/EcomWebhookSecret: not a file name/, 'EcomWebhookSecret file: without a name');
my $f31 = secret_file(f31 => ('f' x 31) . "\n");
$t = refused_by_syntax("EcomWebhookSecret file:$f31\n",
                       qr/EcomWebhookSecret must be at least 32 bytes \(this one has 31\)/,
                       'a secret file of 31 bytes and a newline (the newline is not part of the secret)');
unlike $t->{syntax}, qr/f{31}/, '  without showing the secret';
refused_by_syntax('EcomWebhookSecret file:' . secret_file(big => 'b' x 5000) . "\n",
                  qr/EcomWebhookSecret: .* holds more than 4096 bytes/, 'a secret file of 5000 bytes');
accepted_by_syntax('EcomWebhookSecret file:' . secret_file(f32 => ('g' x 32) . "\r\n") . "\n",
                   'a secret file of 32 bytes and CRLF');
accepted_by_syntax('EcomWebhookSecret ' . ('h' x 32) . "\n", 'a literal secret of 32 bytes');

# --- relations that need the whole configuration: refused by configtest and start --
refused_at_start("EcomCache none\nEcomCacheTTL 10\n",
                 qr/ECOM0501: EcomCacheTTL 10 in the main server has no effect with EcomCache none/,
                 'EcomCacheTTL 10 and EcomCache none');
refused_at_start("EcomCache none\n<VirtualHost 127.0.0.1:\@PORT0\@>\n    EcomCacheTTL 20\n</VirtualHost>\n",
                 qr/ECOM0501: EcomCacheTTL 20 in the <VirtualHost> at \S+:\d+ has no effect with EcomCache none/,
                 "EcomCache none and a virtual host's EcomCacheTTL 20");
refused_at_start("EcomWebhookTolerance 60\n",
                 qr/ECOM0503: EcomWebhookTolerance 60 in the main server has no effect without EcomWebhookSecret/,
                 'EcomWebhookTolerance without EcomWebhookSecret');
my $log = refused_at_start(
    "<VirtualHost 127.0.0.1:\@PORT0\@>\n    EcomWebhookSecret " . ('k' x 40) . "\n</VirtualHost>\n"
    . "<VirtualHost 127.0.0.1:\@PORT1\@>\n    EcomWebhookTolerance 90\n</VirtualHost>\n",
    qr/ECOM0503: EcomWebhookTolerance 90 in the <VirtualHost> at \S+:\d+ has no effect without EcomWebhookSecret/,
    "a virtual host's EcomWebhookTolerance, the secret only in another one", ports => 2);
unlike $log, qr/k{40}/, '  and the message does not show the other host\'s secret';
unlike $log, qr/in the main server/, '  nor blames the main server';
# EcomPaymentProvider names a provider no module registered (ECOM0701)
refused_at_start("EcomPaymentProvider nosuchpay\n",
                 qr/ECOM0701: EcomPaymentProvider nosuchpay in the main server: no payment provider of that name is registered \(registered: sandbox\)/,
                 'an unknown EcomPaymentProvider');
refused_at_start("<VirtualHost 127.0.0.1:\@PORT0\@>\n    EcomPaymentProvider acme\n</VirtualHost>\n",
                 qr/ECOM0701: EcomPaymentProvider acme in the <VirtualHost> at \S+:\d+: no payment provider/,
                 "a virtual host's unknown EcomPaymentProvider");
accepted_by_syntax($dbd . "EcomPaymentProvider sandbox\n", 'EcomPaymentProvider sandbox');

# --- a good configuration starts, and requests see it resolved ----------------
my $secret_main = 'm' . ('0123456789abcdef' x 4);
my $secret_vhost = 'v' x 48;
my $good = $dbd . 'EcomWebhookSecret file:' . secret_file(main => "$secret_main\n") . "\n" . <<"CONF";
LogLevel info ecom:debug
EcomCache "shmcb:\@DIR\@/ecom_cache(512000)"
EcomTokenLifetime 3600
EcomCacheTTL 2
EcomPurgeInterval 0
EcomWebhookTolerance 60
<VirtualHost 127.0.0.1:\@PORT1\@>
    EcomWebhookSecret $secret_vhost
    EcomWebhookTolerance 120
</VirtualHost>
<VirtualHost 127.0.0.1:\@PORT0\@>
    # inherits the main server's secret (else ECOM0503 would refuse)
    EcomWebhookTolerance 30
</VirtualHost>
<Location "/a/">
    SetHandler ecom
    EcomPageSize 4
    EcomMaxBodySize 65536
    EcomMaxAnonBodySize 4096
    EcomIdempotencyKeysPerDay 10
</Location>
<Location "/a/capped/">
    EcomPageSizeMax 2
</Location>
<Location "/a/capped/wide/">
    EcomPageSizeMax 10
</Location>
<Location "/d/">
    SetHandler ecom
    EcomPageSizeMax 3
    EcomCurrency GBP
    EcomBasePath /d
</Location>
<Location "/b/">
    SetHandler ecom
    EcomMaxBodySize 2048
</Location>
<Location "/b/wide/">
    EcomMaxBodySize 65536
</Location>
CONF
my $g = spare_httpd(ports => 2, modules => ['socache_shmcb'], conf => $good);
ok $g->{started}, 'a configuration with every directive set starts'
    or diag(($g->{syntax} // '') . ($g->{start_output} // '') . `tail -n 20 $g->{error_log} 2>&1`);
SKIP: {
    skip 'the good configuration did not start', 12 unless $g->{started};
    my $base = "http://127.0.0.1:$g->{ports}[0]";
    create_product() for 1 .. 4;    # at least 4 on the first page
    my $items = sub { scalar @{ (api(GET => $_[0], base => $base)->{json} // {})->{items} // [] } };
    is $items->('/a/products/'), 4, "a <Location>'s EcomPageSize 4";
    is $items->('/a/capped/products/'), 2, "capped by a nested <Location>'s EcomPageSizeMax 2";
    is $items->('/a/capped/wide/products/'), 4,
       'and back to 4 where a deeper <Location> raises EcomPageSizeMax to 10 (the value as written is kept)';
    is $items->('/d/products/'), 3, 'EcomPageSizeMax 3 alone: EcomPageSize defaults to min(20, 3)';
    is $items->('/d/products/?limit=50'), 3, '  and limit=50 is capped to 3';

    my $u = register_user();
    my $cart = sub { (api(GET => $_[0], base => $base, token => $u->{token})->{json} // {})->{currency} // '' };
    is $cart->('/a/cart/'), 'EUR', 'EcomCurrency defaults to EUR';
    is $cart->('/d/cart/'), 'GBP', "a <Location>'s EcomCurrency GBP";

    # EcomMaxAnonBodySize is not set: its default (8192) is capped by
    # EcomMaxBodySize 2048 in /b/, and not in /b/wide/
    my $login = { email => 'nobody@example.com', password => 'p' x 4000 };
    is api(POST => '/b/auth/login/', base => $base, body => $login)->{status}, 413,
       'a 4 KiB login body is 413 where EcomMaxBodySize 2048 caps EcomMaxAnonBodySize';
    isnt api(POST => '/b/wide/auth/login/', base => $base, body => $login)->{status}, 413,
       'and read where a nested <Location> raises EcomMaxBodySize to 65536';

    $g->{stop}->();
    my $text = slurp_file($g->{error_log}) // '';
    unlike $text, qr/ECOM05\d\d/, 'error.log has no configuration complaint';
    unlike $text, qr/\Q$secret_main\E/, "error.log does not show the main server's secret";
    unlike $text, qr/\Q$secret_vhost\E/, "nor the virtual host's";
}

done_testing;
