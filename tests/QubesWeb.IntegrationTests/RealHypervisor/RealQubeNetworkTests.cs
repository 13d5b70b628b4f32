// The qubes' networks with real guests on a real libvirtd. Each guest's domain is the console's own definition of an
// inventory qube (its interfaces on the links the console made, its SMBIOS OEM strings) with only the lane's kernel
// boot added; the guest sets its address from those strings (TestGuest.NetworkScript), and packets really pass, or
// are really dropped by the host, between provider and clients. The test driver has seen only the XML of all this.
using System.Xml.Linq;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Qubes;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealQubeNetworkTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    [Fact]
    public async Task Clients_reach_their_provider_and_not_each_other_and_an_address_spoofed_inside_a_client_is_dropped()
    {
        _ = daemon; // started by the fixture
        await using var lane = await QubeNetworkLane.StartAsync(guest);
        var (net, a, b) = (lane.Name("net"), lane.Name("a"), lane.Name("b"));
        await lane.AddAsync(net, netvm: null, providesNetwork: true);
        await lane.AddAsync(a, netvm: net);
        await lane.AddAsync(b, netvm: net);
        var agents = await lane.DefineAndStartAsync(net, a, b);
        var (gateway, ipA, ipB) = (await lane.IpOfAsync(net), await lane.IpOfAsync(a), await lane.IpOfAsync(b));
        // The provider was told its clients through its agent once they ran, and routes each on its link.
        await ToldAsync(agents[net], ipA, ipB);
        Assert.Contains($"{ipA} dev ", (await Succeeds(agents[net], "ip route")).StdOut);

        // Each client reaches its netvm, the gateway its firmware named, over ICMP and TCP (the provider's page; busybox
        // 1.35's wget crashes on its own -T, so busybox timeout bounds it).
        foreach (var client in new[] { a, b })
        {
            await Succeeds(agents[client], $"ping -c 1 -w 10 {gateway}");
            Assert.Equal(net + "\n", (await Succeeds(agents[client], $"timeout 10 wget -q -O - http://{gateway}/")).StdOut);
        }
        // a's firewall, set as its page sets it: a rule that drops TCP port 80 on the provider makes the same wget fail,
        // while the ping (not matched) still passes; without the rule the page comes again. No restart in between.
        var commands = lane.Host.Get<QubeCommands>();
        var limited = await commands.SetFirewallAsync(new QubeFirewall(a, FirewallAction.Accept,
            [new FirewallRuleInput(new FirewallRuleSpec(FirewallAction.Drop, gateway, FirewallProtocol.Tcp, 80), "no web on the netvm")]));
        Assert.Equal(FirewallApply.Applied, limited.Applied);
        var blocked = await agents[a].RunAsync("/bin/sh", ["-c", $"timeout 5 wget -q -O - http://{gateway}/"], RealLane.Generous);
        Assert.NotEqual(0, blocked.ExitCode);
        Assert.Equal("", blocked.StdOut);
        await Succeeds(agents[a], $"ping -c 1 -w 10 {gateway}");
        Assert.Equal(net + "\n", (await Succeeds(agents[b], $"timeout 10 wget -q -O - http://{gateway}/")).StdOut);
        Assert.Equal(FirewallApply.Applied, (await commands.SetFirewallAsync(new QubeFirewall(a, FirewallAction.Accept, []))).Applied);
        Assert.Equal(net + "\n", (await Succeeds(agents[a], $"timeout 10 wget -q -O - http://{gateway}/")).StdOut);

        // On the host: both clients' taps are on the provider's bridge, isolated; the provider's own port is not.
        var bridge = QubeNetworkLane.BridgeOf(lane.LinkOf(net));
        foreach (var client in new[] { a, b })
        {
            var tap = lane.TapOf(client, await lane.MacOfAsync(client));
            Assert.Equal(bridge, MasterOf(tap));
            Assert.Equal("1", File.ReadAllText($"/sys/class/net/{tap}/brport/isolated").Trim());
        }
        var providerTap = lane.TapOf(net, QubeAddresses.GatewayMacFor(gateway));
        Assert.Equal(bridge, MasterOf(providerTap));
        Assert.Equal("0", File.ReadAllText($"/sys/class/net/{providerTap}/brport/isolated").Trim());

        // a cannot reach b even straight over the link (an on-link route, no gateway between): isolated ports do not
        // reach each other. The same ping passes once a's port is not isolated, so it is the isolation that stops it.
        var direct = await agents[a].RunAsync("/bin/sh", ["-c", $"ip route add {ipB} dev eth0 && ping -c 2 -w 3 {ipB}"], RealLane.Generous);
        Assert.NotEqual(0, direct.ExitCode);
        Assert.Contains("2 packets transmitted, 0 packets received", direct.StdOut);
        var tapA = lane.TapOf(a, await lane.MacOfAsync(a));
        await RunAsync("bridge", "link", "set", "dev", tapA, "isolated", "off");
        try
        {
            await Succeeds(agents[a], $"ping -c 1 -w 10 {ipB}");
        }
        finally
        {
            await RunAsync("bridge", "link", "set", "dev", tapA, "isolated", "on");
        }

        // a takes b's address and pings its gateway from it: the host's clean-traffic filter drops it before it reaches
        // the provider (its echo counter does not move), while a's own address still gets through (the counter moves).
        var echoes = await EchoRequestsAsync(agents[net]);
        var spoofed = await agents[a].RunAsync("/bin/sh", ["-c", $"ip route del {ipB} dev eth0; ip addr add {ipB}/32 dev eth0 && ping -c 2 -w 3 -I {ipB} {gateway}"], RealLane.Generous);
        Assert.NotEqual(0, spoofed.ExitCode);
        Assert.Contains("2 packets transmitted, 0 packets received", spoofed.StdOut);
        Assert.Equal(echoes, await EchoRequestsAsync(agents[net]));
        await Succeeds(agents[a], $"ping -c 1 -w 10 -I {ipA} {gateway}");
        Assert.True(await EchoRequestsAsync(agents[net]) > echoes, "the provider counted no echo request from a's own address");
    }

    [Fact]
    public async Task A_running_client_moved_to_another_provider_reaches_it_without_a_restart_and_netvm_none_unplugs_it()
    {
        _ = daemon; // started by the fixture
        await using var lane = await QubeNetworkLane.StartAsync(guest);
        var (first, second, client) = (lane.Name("neta"), lane.Name("netb"), lane.Name("c"));
        await lane.AddAsync(first, netvm: null, providesNetwork: true);
        await lane.AddAsync(second, netvm: null, providesNetwork: true);
        await lane.AddAsync(client, netvm: first);
        var agents = await lane.DefineAndStartAsync(first, second, client);
        var (firstIp, secondIp, ip, mac) = (await lane.IpOfAsync(first), await lane.IpOfAsync(second), await lane.IpOfAsync(client), await lane.MacOfAsync(client));
        var agent = agents[client];
        await ToldAsync(agents[first], ip);
        await ToldAsync(agents[second]);
        Assert.Equal(first + "\n", (await Succeeds(agent, $"timeout 10 wget -q -O - http://{firstIp}/")).StdOut);

        // The netvm changes in the console as the qube's page changes it, while the client runs.
        var saved = await lane.Host.Get<QubeCommands>().SavePropertiesAsync(client, new QubeChanges(NetVm: second));
        Assert.Null(saved.DomainProblem);
        Assert.Equal(InterfaceMove.Moved, saved.Network);

        // The same NIC (same MAC, no restart) is now on second's bridge, still isolated and still filtered to its address.
        var tap = lane.TapOf(client, mac);
        Assert.Equal(QubeNetworkLane.BridgeOf(lane.LinkOf(second)), MasterOf(tap));
        Assert.Equal("1", File.ReadAllText($"/sys/class/net/{tap}/brport/isolated").Trim());
        var nic = Assert.Single(lane.Interfaces(client, (DomainXmlFlags)0));
        Assert.Equal(lane.LinkOf(second), nic.Element("source")!.Attribute("network")!.Value);
        Assert.Contains(nic.Element("filterref")!.Elements("parameter"), p => p.Attribute("name")!.Value == "IP" && p.Attribute("value")!.Value == ip);
        var ebtables = await RunAsync("ebtables", "-t", "nat", "-L");
        Assert.Contains($"libvirt-I-{tap}", ebtables);
        Assert.Contains($"-p IPv4 --ip-src {ip} -j RETURN", ebtables);
        Assert.Equal(lane.LinkOf(second), Assert.Single(lane.Interfaces(client, DomainXmlFlags.Inactive)).Element("source")!.Attribute("network")!.Value);
        // libvirt's port on the old link went with it: first's link holds only first's own port now.
        Assert.Equal([first], await QubeNetworkLane.PortOwnersAsync(lane.LinkOf(first)));
        Assert.Equal([client, second], (await QubeNetworkLane.PortOwnersAsync(lane.LinkOf(second))).Order(StringComparer.Ordinal));
        // Both providers were told, live: the client left one and joined the other.
        await ToldAsync(agents[first]);
        await ToldAsync(agents[second], ip);

        // The guest's firmware still names the old gateway (SMBIOS strings are fixed at boot): it is told its new one
        // through its agent, and re-applies its settings with it. Its address and MAC stay the qube's.
        await Succeeds(agent, $"/sbin/qubesweb-network gateway={secondIp}");
        await Succeeds(agent, $"ping -c 1 -w 10 {secondIp}");
        Assert.Equal(second + "\n", (await Succeeds(agent, $"timeout 10 wget -q -O - http://{secondIp}/")).StdOut);
        // The old provider is not on its link any more, even straight over it.
        var old = await agent.RunAsync("/bin/sh", ["-c", $"ip route add {firstIp} dev eth0 && ping -c 2 -w 3 {firstIp}"], RealLane.Generous);
        Assert.NotEqual(0, old.ExitCode);
        Assert.Contains("2 packets transmitted, 0 packets received", old.StdOut);

        // netvm none: the interface is unplugged from the running guest, and its definition has none either.
        saved = await lane.Host.Get<QubeCommands>().SavePropertiesAsync(client, new QubeChanges(ClearNetVm: true));
        Assert.Null(saved.DomainProblem);
        Assert.Equal(InterfaceMove.Moved, saved.Network);
        await Eventually.UntilAsync(async () => (await Succeeds(agent, "ls /sys/class/net")).StdOut == "lo\n",
            "the guest to lose its NIC", RealLane.Generous);
        Assert.Empty(lane.Interfaces(client, (DomainXmlFlags)0));
        Assert.Empty(lane.Interfaces(client, DomainXmlFlags.Inactive));
        Assert.False(Directory.Exists($"/sys/class/net/{tap}"));
        await ToldAsync(agents[second]);

        // Back onto a netvm: a NIC with the qube's MAC is plugged in again, on first's link, isolated; the guest sets it
        // up as at boot, with the gateway its firmware names (first, its netvm at boot).
        saved = await lane.Host.Get<QubeCommands>().SavePropertiesAsync(client, new QubeChanges(NetVm: first));
        Assert.Null(saved.DomainProblem);
        Assert.Equal(InterfaceMove.Moved, saved.Network);
        tap = lane.TapOf(client, mac);
        Assert.Equal(QubeNetworkLane.BridgeOf(lane.LinkOf(first)), MasterOf(tap));
        Assert.Equal("1", File.ReadAllText($"/sys/class/net/{tap}/brport/isolated").Trim());
        await Succeeds(agent, "/sbin/qubesweb-network");
        Assert.Equal(first + "\n", (await Succeeds(agent, $"timeout 10 wget -q -O - http://{firstIp}/")).StdOut);
    }

    /// <summary>Waits until the provider's guest was told exactly these clients (TestGuest.ClientsScript keeps the list).</summary>
    private static Task ToldAsync(GuestAgent provider, params string[] clients) =>
        Eventually.UntilAsync(async () => (await provider.RunAsync("/bin/sh", ["-c", "cat /run/network-clients"], RealLane.Generous)).StdOut == string.Join(' ', clients.Order(StringComparer.Ordinal)) + "\n",
            $"the provider to be told its clients: {(clients.Length == 0 ? "none" : string.Join(' ', clients))}", RealLane.Generous);

    /// <summary>How many ICMP echo requests the guest's kernel has received (/proc/net/snmp's Icmp InEchos).</summary>
    private static async Task<long> EchoRequestsAsync(GuestAgent agent)
    {
        var icmp = (await Succeeds(agent, "grep '^Icmp:' /proc/net/snmp")).StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        return long.Parse(icmp[1][Array.IndexOf(icmp[0], "InEchos")]);
    }

    /// <summary>A shell command in the guest, through its agent; fails the test with its output unless it exits 0.</summary>
    private static async Task<GuestExecResult> Succeeds(GuestAgent agent, string command)
    {
        var run = await agent.RunAsync("/bin/sh", ["-c", command], RealLane.Generous);
        Assert.True(run.ExitCode == 0, $"'{command}' in the guest exited {run.ExitCode} (signal {run.Signal}): {run.StdOut}{run.StdErr}");
        return run;
    }

    /// <summary>The bridge a host interface is a port of.</summary>
    private static string MasterOf(string tap) => Path.GetFileName(File.ResolveLinkTarget($"/sys/class/net/{tap}/master", false)!.FullName);

    private static async Task<string> RunAsync(string tool, params string[] args) =>
        (await Hypervisor.Storage.ProcessRunner.RunCheckedAsync(tool, args)).StandardOutput;
}

/// <summary>
/// A console on the lane's libvirtd with qubes of its inventory booted as the lane's small guest. The uplink (a
/// provider without a netvm is plugged into it) is the test's, as a host's is its own: a bridge that leads nowhere,
/// since the lane has no dnsmasq for libvirt's default network. Everything is named with one random suffix.
/// </summary>
public sealed class QubeNetworkLane : IAsyncDisposable
{
    private readonly string _id = Guid.NewGuid().ToString("N")[..8];

    /// <summary>
    /// The third octet of the lane's qubes' addresses, at random. A link's bridge is named after its provider's address
    /// (qwbr-A-B), unique within one inventory; but other consoles on the lane's libvirtd (parallel tests, benchmarks)
    /// hand out the lowest addresses of their own fresh inventories, and the bridges would collide on the host.
    /// </summary>
    private readonly int _block = Random.Shared.Next(1, 256);
    private readonly TestGuest _guest;
    private readonly List<string> _qubes = [];
    private readonly Connect _connect = Connect.Open(RealLibvirtd.Uri);
    private ConsoleHost? _host;

    private QubeNetworkLane(TestGuest guest) => _guest = guest;

    public ConsoleHost Host => _host!;
    private string Uplink => "qwt-uplink-" + _id;

    public static async Task<QubeNetworkLane> StartAsync(TestGuest guest)
    {
        var lane = new QubeNetworkLane(guest);
        try
        {
            using (lane._connect.DefineNetworkXml(new XElement("network", new XElement("name", lane.Uplink),
                       new XElement("bridge", new XAttribute("stp", "off"))).ToString())) { }
            lane._host = await RealLane.StartConsoleAsync("--Networks:Uplink=" + lane.Uplink);
            return lane;
        }
        catch
        {
            await lane.DisposeAsync();
            throw;
        }
    }

    public string Name(string role) => $"qwt-{role}-{_id}";

    /// <summary>A qube the test made otherwise (e.g. imported) whose domain goes with the lane.</summary>
    public void Owns(string name) => _qubes.Add(name);

    public async Task AddAsync(string name, string? netvm, bool providesNetwork = false)
    {
        _qubes.Add(name);
        var inventory = Host.Get<Inventory>();
        await inventory.CreateAsync(new NewQube(name, QubeClass.StandaloneVM, "orange", NetVm: netvm,
            ProvidesNetwork: providesNetwork, MemoryMiB: 256, VCpus: 1));
        // Its address (and the MAC that goes with it) moved into the lane's block, as an older inventory could have it.
        var ip = $"10.137.{_block}.{1 + _qubes.Count}";
        await using var db = await inventory.Contexts.CreateDbContextAsync();
        var row = await db.Qubes.SingleAsync(q => q.Name == name);
        (row.IpAddress, row.MacAddress) = (ip, QubeAddresses.MacFor(ip));
        await db.SaveChangesAsync();
    }

    /// <summary>
    /// The console defines the qubes' domains and their links (one reconciliation: reconciliations take turns, and a
    /// later one leaves a defined domain be); each domain is then defined again as the console's own XML for the qube
    /// with the guest's kernel boot added, which the console finds equal to its own. Then each starts with the
    /// console's start job (it starts the links), in the order given, and boots in parallel with the others.
    /// </summary>
    public async Task<Dictionary<string, GuestAgent>> DefineAndStartAsync(params string[] names)
    {
        await Host.Get<EstateMonitor>().ReconcileAsync();
        var definitions = Host.Get<DomainDefinitions>();
        foreach (var name in names)
        {
            var qube = await Host.Get<Inventory>().GetForDomainAsync(name);
            using (_connect.DefineDomainXml(_guest.DomainXml(definitions.SpecOf(qube)))) { }
            Assert.False(definitions.Apply(qube), $"the console would define {name} otherwise than its own XML says");
        }
        foreach (var name in names)
            await SucceedsAsync(Host, JobKind.Start, name, timeout: RealLane.Generous);
        var agents = await Task.WhenAll(names.Select(n => RealLane.AgentOfAsync(Host, n)));
        return names.Zip(agents).ToDictionary(p => p.First, p => p.Second);
    }

    public async Task<string> IpOfAsync(string name) => (await Host.Get<Inventory>().GetAsync(name)).IpAddress!;
    public async Task<string> MacOfAsync(string name) => (await Host.Get<Inventory>().GetAsync(name)).MacAddress!;
    public string LinkOf(string provider) => LinkSpec.NamePrefix + provider;

    /// <summary>The host bridge of a libvirt network.</summary>
    public static string BridgeOf(string network)
    {
        using var connect = Connect.Open(RealLibvirtd.Uri);
        using var n = connect.TryLookupNetworkByName(network) ?? throw new InvalidOperationException($"libvirt has no network {network}.");
        return XElement.Parse(n.GetXmlDesc()).Element("bridge")!.Attribute("name")!.Value;
    }

    /// <summary>The domains that own a port on a libvirt network (virsh: the binding has no network ports).</summary>
    public static async Task<List<string>> PortOwnersAsync(string network)
    {
        var owners = new List<string>();
        foreach (var port in (await RealLibvirtd.VirshAsync("net-port-list", network, "--uuid")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            owners.Add(XElement.Parse(await RealLibvirtd.VirshAsync("net-port-dumpxml", network, port)).Element("owner")!.Element("name")!.Value);
        return owners;
    }

    public IReadOnlyList<XElement> Interfaces(string name, DomainXmlFlags flags)
    {
        using var d = _connect.LookupDomainByName(name);
        return XElement.Parse(d.GetXmlDesc(flags)).Element("devices")!.Elements("interface").ToList();
    }

    /// <summary>The host's tap of the running domain's interface with <paramref name="mac"/>.</summary>
    public string TapOf(string name, string mac) =>
        Interfaces(name, (DomainXmlFlags)0).Single(i => i.Element("mac")!.Attribute("address")!.Value == mac)
            .Element("target")!.Attribute("dev")!.Value;

    public async ValueTask DisposeAsync()
    {
        // The console first: it would define again, from its inventory, a domain removed under it.
        if (_host is not null) await _host.DisposeAsync();
        foreach (var name in _qubes) RealLibvirtd.Remove(name);
        foreach (var network in _qubes.Select(LinkOf).Append(Uplink))
        {
            using var n = _connect.TryLookupNetworkByName(network);
            if (n is null) continue;
            if (n.IsActive) n.Destroy();
            if (n.IsPersistent) n.Undefine();
        }
        _connect.Dispose();
    }
}
