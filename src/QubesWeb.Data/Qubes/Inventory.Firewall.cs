using Microsoft.EntityFrameworkCore;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Data.Qubes;

/// <summary>A qube's firewall as the inventory keeps it: its policy and its rules, in order.</summary>
public sealed record QubeFirewall(string Qube, FirewallAction Policy, IReadOnlyList<FirewallRuleInput> Rules)
{
    public FirewallSpec Spec => new(Qube, Policy, Rules.Select(r => r.Rule).ToList());
}

public sealed partial class Inventory
{
    /// <summary>The qube's firewall; a refusal for dom0, which is on no network.</summary>
    public async Task<QubeFirewall> FirewallOfAsync(string name, CancellationToken ct = default)
    {
        await using var db = await contexts.CreateDbContextAsync(ct);
        var qube = await db.Qubes.AsNoTracking().Include(q => q.FirewallRules).FirstOrDefaultAsync(q => q.Name == name, ct) ?? throw QubeRuleException.NoQube(name);
        QubeRules.EnsureNotAdminVm(qube);
        return new QubeFirewall(qube.Name, qube.FirewallPolicy,
            qube.FirewallRules.OrderBy(r => r.Position).Select(r => new FirewallRuleInput(r.ToSpec(), r.Comment)).ToList());
    }

    /// <summary>
    /// Replaces the qube's firewall, its policy and every rule, in one transaction: a refused rule writes nothing. A
    /// template's is not edited: it is on no network (its updates go through its updates proxy), as in Qubes.
    /// </summary>
    public async Task SetFirewallAsync(QubeFirewall firewall, CancellationToken ct = default)
    {
        _ = firewall.Spec; // checks the policy and the number of rules
        for (var i = 0; i < firewall.Rules.Count; i++)
            if (FirewallRules.CommentProblem(firewall.Rules[i].Comment) is { } problem)
                throw new QubeRuleException($"Rule {i + 1}: {problem}");
        await using var db = await contexts.CreateDbContextAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var qube = await db.Qubes.Include(q => q.FirewallRules).FirstOrDefaultAsync(q => q.Name == firewall.Qube, ct) ?? throw QubeRuleException.NoQube(firewall.Qube);
        QubeRules.EnsureNotAdminVm(qube);
        if (qube.Class == QubeClass.TemplateVM)
            throw new QubeRuleException($"'{qube.Name}' is a template: it is on no network and reaches only its updates proxy, during an update. It has no firewall to edit.");
        // The old rows go first, in their own statement: the new ones take the same positions (a unique index).
        db.FirewallRules.RemoveRange(qube.FirewallRules);
        await db.SaveChangesAsync(ct);
        qube.FirewallPolicy = firewall.Policy;
        for (var i = 0; i < firewall.Rules.Count; i++)
        {
            var (rule, comment) = (firewall.Rules[i].Rule, firewall.Rules[i].Comment);
            qube.FirewallRules.Add(new FirewallRule
            {
                Position = i, Action = rule.Action, Destination = rule.Destination, Protocol = rule.Protocol,
                PortStart = rule.PortStart, PortEnd = rule.PortEnd, IcmpType = rule.IcmpType, Comment = comment,
            });
        }
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
    }
}
