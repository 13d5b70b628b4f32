// A template's update through its UpdateVM's updates proxy, with real guests on a real libvirtd. The template is the
// lane's disk image imported by the console; its UpdateVM is a network provider guest running a proxy of the test's
// making in front of a package repository (busybox httpd). Outside the update the template has no interface at all;
// during it, the job's interface reaches the proxy and nothing else; what it fetched is committed with the update.
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Templates;
using QubesWeb.Services.Updates;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealUpdatesProxyTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    /// <summary>What the fake repository serves, and where.</summary>
    private const string Package = "qubesweb-test-package 1.0", PackagePath = "repo/pool/pkg";

    /// <summary>
    /// The updates proxy, one request per connection (run by busybox nc for each): it takes the request line's absolute
    /// URL, fetches its path from the repository on the UpdateVM's own httpd, and answers with it; every URL asked is
    /// logged, so the test sees that the template's request came through it.
    /// </summary>
    private const string Proxy = """
        #!/bin/sh
        read -r method url version
        while read -r line; do [ -z "$(printf '%s' "$line" | tr -d '\r')" ] && break; done
        echo "$method $url" >> /run/proxy.log
        path=${url#http://*/}
        if wget -q -O /run/proxy-body "http://127.0.0.1/$path"; then
          printf 'HTTP/1.0 200 OK\r\nContent-Length: %s\r\n\r\n' "$(wc -c < /run/proxy-body)"; cat /run/proxy-body
        else
          printf 'HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'
        fi
        """;

    /// <summary>
    /// The template's package manager for the test (its qubesweb-update-command): fetch the package through
    /// http_proxy, which the job gives it, then try the UpdateVM's web page straight, past the proxy, which the job's
    /// firewall must drop. Both outcomes are written to the root, which the update commits.
    /// </summary>
    private const string Update = """
        set -e
        wget -q -O /opt/test/pkg "http://repo.qubesweb.test/repo/pool/pkg"
        proxy=${http_proxy#http://}; host=${proxy%%:*}
        if env -u http_proxy -u HTTP_PROXY timeout 5 wget -q -O - "http://$host/"; then echo "reached $host:80 past the proxy"; exit 3; fi
        echo "past the proxy: blocked" > /opt/test/direct
        """;

    [Fact]
    public async Task A_template_reaches_a_repository_only_through_its_UpdateVMs_proxy_and_only_while_it_updates()
    {
        _ = daemon; // started by the fixture
        await using var lane = await QubeNetworkLane.StartAsync(guest);
        var (updateVm, template) = (lane.Name("upd"), lane.Name("tpl"));
        await lane.AddAsync(updateVm, netvm: null, providesNetwork: true);
        var provider = (await lane.DefineAndStartAsync(updateVm))[updateVm];
        var proxyAddress = await lane.IpOfAsync(updateVm);

        // The repository and the proxy in the UpdateVM (the script is passed as an argument: nothing is quoted).
        await Succeeds(provider, "mkdir -p /run/www/repo/pool && printf '%s\\n' \"$1\" > /run/www/" + PackagePath, Package);
        await Succeeds(provider, "printf '%s\\n' \"$1\" > /run/proxy && chmod +x /run/proxy", Proxy);
        await Succeeds(provider, $"setsid nc -ll -p {QubeRules.UpdatesProxyPort} -e /run/proxy </dev/null >/dev/null 2>&1 &");

        // The template, imported as a user would, its UpdateVM and its update command set as its page sets them.
        var image = await RealLane.MakeImageAsync(guest, template);
        lane.Owns(template);
        try
        {
            await SucceedsAsync(lane.Host, JobKind.Import, template, new ImportTemplateRequest(image, "black", "debian", await RealLane.Sha256Async(image)), RealLane.Generous);
            var saved = await lane.Host.Get<QubeCommands>().SavePropertiesAsync(template, new QubeChanges(UpdateVm: updateVm,
                Features: new Dictionary<string, string?> { [UpdateCommands.CommandFeature] = "/bin/sh /opt/test/update.sh" }));
            Assert.Null(saved.DomainProblem);

            // Outside an update the template has no interface: nothing to reach anything with.
            var agent = await RealLane.StartAsync(lane.Host, template);
            Assert.Equal("lo\n", (await Succeeds(agent, "ls /sys/class/net")).StdOut);
            Assert.Empty(lane.Interfaces(template, (DomainXmlFlags)0));
            await Succeeds(agent, "mkdir -p /opt/test && printf '%s\\n' \"$1\" > /opt/test/update.sh", Update);

            // The update job (on the running template) plugs its interface in, and its command gets the package.
            var job = await SucceedsAsync(lane.Host, JobKind.Update, template, timeout: RealLane.Boot);
            Assert.Contains(job.Log, l => l.Text.StartsWith($"{template} reaches {updateVm}'s updates proxy at {proxyAddress}:{QubeRules.UpdatesProxyPort} on eth", StringComparison.Ordinal));
            Assert.Equal(RunState.Halted, lane.Host.Get<IHypervisor>().GetDomain(template)!.State);
            Assert.Contains($"GET http://repo.qubesweb.test/{PackagePath}", (await Succeeds(provider, "cat /run/proxy.log")).StdOut);

            // What it fetched was committed with the update; its definition never had the interface, so it has none again.
            agent = await RealLane.StartAsync(lane.Host, template);
            Assert.Equal(Package + "\n", (await Succeeds(agent, "cat /opt/test/pkg")).StdOut);
            Assert.Equal("past the proxy: blocked\n", (await Succeeds(agent, "cat /opt/test/direct")).StdOut);
            Assert.Equal("lo\n", (await Succeeds(agent, "ls /sys/class/net")).StdOut);
            Assert.Empty(lane.Interfaces(template, DomainXmlFlags.Inactive));
            await agent.ShutdownAsync();
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(image)!, recursive: true);
        }
    }

    /// <summary>A shell command in the guest with its arguments ($1...), through its agent; fails the test unless it exits 0.</summary>
    private static async Task<GuestExecResult> Succeeds(GuestAgent agent, string command, params string[] args)
    {
        var run = await agent.RunAsync("/bin/sh", ["-c", command, "sh", .. args], RealLane.Generous);
        Assert.True(run.ExitCode == 0, $"'{command}' in the guest exited {run.ExitCode} (signal {run.Signal}): {run.StdOut}{run.StdErr}");
        return run;
    }
}
