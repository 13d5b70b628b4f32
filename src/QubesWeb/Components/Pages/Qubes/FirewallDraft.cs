using System.Globalization;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Components.Pages.Qubes;

/// <summary>One rule as the editor holds it: text as typed, checked only when the firewall is saved.</summary>
public sealed class FirewallRowDraft
{
    public FirewallAction Action { get; set; } = FirewallAction.Accept;
    public string Destination { get; set; } = "";
    public FirewallProtocol Protocol { get; set; } = FirewallProtocol.Any;
    public string Ports { get; set; } = "";
    public string IcmpType { get; set; } = "";
    public string Comment { get; set; } = "";

    public static FirewallRowDraft From(FirewallRuleInput input) => new()
    {
        Action = input.Rule.Action,
        Destination = input.Rule.Destination ?? "",
        Protocol = input.Rule.Protocol,
        Ports = input.Rule.Ports ?? "",
        IcmpType = input.Rule.IcmpType?.ToString(CultureInfo.InvariantCulture) ?? "",
        Comment = input.Comment,
    };

    public FirewallRowDraft Copy() => (FirewallRowDraft)MemberwiseClone();

    /// <summary>The rule, or an ArgumentException whose message says what to write instead.</summary>
    public FirewallRuleInput ToInput()
    {
        var (start, end) = FirewallRuleSpec.ParsePorts(Ports);
        int? icmp = null;
        if (!string.IsNullOrWhiteSpace(IcmpType))
            icmp = int.TryParse(IcmpType.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var t)
                ? t : throw new ArgumentException($"'{IcmpType.Trim()}' is not an ICMP type: a number from 0 to 255 (8 is echo request, ping).");
        return new FirewallRuleInput(new FirewallRuleSpec(Action, Destination.Trim(), Protocol, start, end, icmp), Comment.Trim());
    }

    public bool SameAs(FirewallRowDraft other) =>
        Action == other.Action && Destination == other.Destination && Protocol == other.Protocol && Ports == other.Ports && IcmpType == other.IcmpType && Comment == other.Comment;
}

/// <summary>A qube's firewall being edited: policy and rows, compared with what was loaded to tell unsaved changes.</summary>
public sealed class FirewallDraft
{
    /// <summary>Qubes' virtual DNS servers (10.139.1.1 and .2) as one network, for the rule a limited firewall starts with.</summary>
    public const string DnsNetwork = "10.139.1.0/30";

    public FirewallAction Policy { get; set; }
    public List<FirewallRowDraft> Rows { get; } = [];

    public static FirewallDraft From(QubeFirewall firewall)
    {
        var draft = new FirewallDraft { Policy = firewall.Policy };
        draft.Rows.AddRange(firewall.Rules.Select(FirewallRowDraft.From));
        return draft;
    }

    public FirewallDraft Copy()
    {
        var copy = new FirewallDraft { Policy = Policy };
        copy.Rows.AddRange(Rows.Select(r => r.Copy()));
        return copy;
    }

    public bool SameAs(FirewallDraft other) =>
        Policy == other.Policy && Rows.Count == other.Rows.Count && Rows.Zip(other.Rows).All(p => p.First.SameAs(p.Second));

    /// <summary>
    /// Limiting a firewall with no rules would cut even name lookups, which Qube Manager allows by default: it starts
    /// with DNS to Qubes' resolvers allowed, a rule the user may remove.
    /// </summary>
    public void Limit()
    {
        Policy = FirewallAction.Drop;
        if (Rows.Count == 0)
            Rows.Add(new FirewallRowDraft { Action = FirewallAction.Accept, Destination = DnsNetwork, Protocol = FirewallProtocol.Udp, Ports = "53", Comment = "DNS" });
    }

    public void Move(int index, int by)
    {
        var to = index + by;
        if (index < 0 || index >= Rows.Count || to < 0 || to >= Rows.Count) return;
        (Rows[index], Rows[to]) = (Rows[to], Rows[index]);
    }

    /// <summary>The firewall to save, or a <see cref="QubeRuleException"/> naming the first rule that is wrong and what to write.</summary>
    public QubeFirewall ToFirewall(string qube)
    {
        var rules = new List<FirewallRuleInput>(Rows.Count);
        for (var i = 0; i < Rows.Count; i++)
        {
            try
            {
                rules.Add(Rows[i].ToInput());
            }
            catch (ArgumentException e)
            {
                throw new QubeRuleException($"Rule {i + 1}: {ArgumentMessage(e)}");
            }
        }
        return new QubeFirewall(qube, Policy, rules);
    }

    /// <summary>The message without " (Parameter 'x')", which speaks to programmers.</summary>
    private static string ArgumentMessage(ArgumentException e) =>
        e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
}
