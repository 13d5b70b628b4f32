// What a network provider is told of its clients: the addresses of those that run on it now, in a stable order.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Providers;

namespace QubesWeb.UnitTests;

public sealed class ProviderClientsTests
{
    private static Qube Q(string name, string? ip, Qube? netvm = null) =>
        new() { Name = name, Class = QubeClass.AppVM, IpAddress = ip, NetVm = netvm, Label = new Label { Name = "red", Color = "#e53935" } };

    [Fact]
    public void A_provider_is_told_the_addresses_of_its_running_and_paused_clients_in_order_and_no_others()
    {
        var firewall = Q("sys-firewall", "10.137.0.4");
        var vpn = Q("sys-vpn", "10.137.0.5");
        var qubes = new[]
        {
            firewall, vpn,
            Q("work", "10.137.0.12", firewall), Q("personal", "10.137.0.10", firewall), Q("banking", "10.137.0.9", firewall),
            Q("halted", "10.137.0.11", firewall), Q("on-vpn", "10.137.0.13", vpn), Q("offline", "10.137.0.14"),
        };
        var states = new Dictionary<string, RunState>
        {
            ["work"] = RunState.Running, ["personal"] = RunState.Paused, ["banking"] = RunState.Running, ["halted"] = RunState.Halted,
            ["on-vpn"] = RunState.Running, ["offline"] = RunState.Running,
        };
        RunState State(Qube q) => states.GetValueOrDefault(q.Name, RunState.Running);

        Assert.Equal(["10.137.0.9", "10.137.0.10", "10.137.0.12"], ProviderClients.ClientsOf("sys-firewall", qubes, State));
        Assert.Equal(["10.137.0.13"], ProviderClients.ClientsOf("sys-vpn", qubes, State));
        states["on-vpn"] = RunState.Halted;
        Assert.Empty(ProviderClients.ClientsOf("sys-vpn", qubes, State));
    }
}
